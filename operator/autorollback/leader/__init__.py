"""Leader election with a coordination.k8s.io/v1 Lease, the way kube-controller-manager does it:
`core` decides (pure), `elector` talks to the API and keeps the process's leadership."""
