"""`autorollback status`: what autorollback protects and what it decided, read from the cluster.

`core` turns raw objects (a workload, its history objects, autorollback's Events) into rows and a
detail model; `render` draws them (pure: the clock is passed in); `shell` reads the cluster with the
user's kubeconfig. Nothing here imports kopf or the forge clients."""
