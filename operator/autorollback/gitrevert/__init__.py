"""Roll forward through Git: after an automatic rollback, open a pull request that reverts the
commit that introduced the failed version. `core` decides (pure), `git` and `forge` do the I/O,
`worker` runs it in the background so that a rollback never waits for Git."""
