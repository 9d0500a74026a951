"""The detector catalogue and its runtime (see docs/detectors.md).

- `base.Detector`: the protocol every detector follows;
- `catalogue.CATALOGUE`: every rule, its settings model and the sites it applies to;
- `runtime.DetectorRuntime`: routes readings to per-site detector sets, drives their
  timers in `wall` or `event` clock mode, and persists their snapshots.
"""
