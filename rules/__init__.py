"""shapelint's built-in rule pack, importable as ``shapelint_rules``.

Families (the hundreds of the code): SL0xx the model itself, SL1xx generic
shape conflicts, SL2xx recurrent-op feeds, SL3xx missing TimeDistributed,
SL4xx output projections, SL5xx sizes baked in for one value of a dim.
Retired codes: none yet.
"""
