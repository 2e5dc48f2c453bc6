"""Check stage: numerical verification of a port against the Keras model it came from.

Runs Keras and the generated (or hand-edited) torch module on the same inputs, compares
them layer by layer, writes the per-layer report ``REPORT.md``, and emits a standalone pytest
regression test. Modules, lowest first:

- ``compare``: running both models end to end, final-output errors.
- ``default_inputs``: the inputs drawn when the user gives none, from what the model records.
- ``inputs``: ``--inputs FILE`` (or arrays) checked against the model, else the drawn ones.
- ``instrument``: compiles the module source with every matched forward statement recorded.
- ``keras_values``: Keras's value of every layer call, its final outputs, its random layers.
- ``torch_values``: runs the torch module; its values back in Keras's layout; error arithmetic.
- ``noise_floor``: the port in float64, and whether Keras is within float32 rounding noise.
- ``rows``: the report's per-layer table (``LayerRow``), its errors and the first error jump.
- ``manifest``: parameter counts and where every weight went (the weight manifest).
- ``report_data``: the ``Report`` dataclass one comparison fills.
- ``markdown``: a ``Report`` as REPORT.md text and as terminal summaries.
- ``report``: ``build_report`` and ``write_report``, the orchestration of the above.
- ``emit_test``: ``--emit-test``, ``test_model.py`` and its reference outputs.
- ``training_parity``: ``--verify --emit-train``, a few steps of ``train.py`` against Keras's.
"""
