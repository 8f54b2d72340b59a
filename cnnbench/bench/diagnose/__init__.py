"""Why does my network not learn? Short, cheap probes of a recipe, a checklist and a verdict.

:func:`diagnose` builds the recipe exactly as ``cnnbench evaluate`` / ``bench`` would (through
the protocol's own pieces in :mod:`cnnbench.bench.protocol`: the factory seeded by ``build_recipe``, the
same preprocessing, loss, optimizer, batch order, augmentation generator and target scaling),
probes it on a small sample of the **train** split (the test split is never read), and ranks
the causes the checks point at. The modules:

- :mod:`.setup`: the model's factory, the train sample, the recipe built as a run builds it;
- :mod:`.trace`: one forward pass watched (ReLU activity, dropout, pooling, widths, the op
  that produced the output);
- :mod:`.checks`: measured numbers -> one :class:`CheckResult` each;
- :mod:`.probes`: the probes in order, and :func:`diagnose`;
- :mod:`.verdict`: which cause is the root cause, and why;
- :mod:`.render`: the text checklist. Thresholds are in :mod:`.thresholds`.
"""

from .probes import diagnose
from .render import render_text
from .results import FAIL, INFO, PASS, SKIP, STATUSES, WARN, Cause, CheckResult, DiagnoseError, Diagnosis
from .setup import resolve_model
from .trace import relu_activity, trace_forward
from .verdict import CAUSES, rank_causes

__all__ = ["diagnose", "render_text", "resolve_model", "relu_activity", "trace_forward", "rank_causes",
           "CAUSES", "Cause", "CheckResult", "Diagnosis", "DiagnoseError",
           "PASS", "WARN", "FAIL", "SKIP", "INFO", "STATUSES"]
