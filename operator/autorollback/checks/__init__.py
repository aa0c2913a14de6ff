"""Metric checks (issue #17): roll back a release that started but hurts users, judged by the
platform's PromQL checks on the new revision's pods while it rolls out and for a bake time after.
The pure core only: `templates` (the catalog and a workload's selection), `promql` (rendering and
namespace scoping), `outcome` (one evaluation), `streak` (consecutive failures, the checkpoint),
`bake` (a revision's bake), `settings` (the platform's configuration, the catalog file's text). No
kopf, kubernetes or HTTP import here, except in the one shell module: `prometheus`, the HTTP
client of the Prometheus API."""
