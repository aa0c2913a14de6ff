from autorollback.main import main

raise SystemExit(main())
