from autorollback.cli import main

raise SystemExit(main())
