"""Workload kinds behind one seam (base.Workload); one adapter per kind."""
