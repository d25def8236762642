"""A shapelint.ignore suppression in the model or on a node that suppresses nothing.

## What it does
Reports a ``shapelint.ignore`` entry of the model's or a node's
``metadata_props`` (shapelint's counterpart of ``# noqa``) that dropped no
finding in this run, or that names a code no installed rule has.  The
entry holds codes or prefixes separated by commas: ``"SL501"``,
``"SL501,SL204"``.  On the model it drops those findings anywhere in the
model; on a node, the findings anchored on that node.

The check is made by the engine after every other rule ran (this class only
carries the code, the documentation and the severity): a code whose rule was
not selected in the run is not counted as unused.

## Why is this bad?
A suppression outlives the mistake it silenced: after the model is
re-exported with the fix, the stale entry would hide the same mistake if it
came back.  A misspelt code (``SL510``) silences nothing and hides that it
does not work.

## Example
```python
import onnx

model = onnx.load("model.onnx", load_external_data=False)
onnx.helper.set_model_props(model, {"shapelint.ignore": "SL501"})  # the batch size is fixed on purpose
onnx.save(model, "model.onnx")
```
and a later export takes the batch size from the input: SL501 no longer fires.

## Use instead
Remove the entry, or the codes in it that no longer fire (on a node:
``del node.metadata_props[k]``), and keep suppressions on the node that
causes the finding rather than on the whole model.

## Options
None.

## Limitations
Node-level ``metadata_props`` need onnx 1.16 or later (IR version 10);
older exporters cannot write them, the model-level entry works everywhere.
"""

from __future__ import annotations

from shapelint.rule import Rule, Severity


class UnusedSuppression(Rule):
    __doc__ = __doc__
    code, slug, severity = "SL009", "unused-suppression", Severity.WARNING
    op_types = ()

    def check(self, node, ctx):
        return ()  # reported by shapelint.suppress once every other rule has run
