"""The six steps of the pipelines benchmark (``benchmarks/pipelines.py``), written once.

:mod:`pipeline_steps.steps` holds plain Python functions (inputs and params in, a dict of
outputs back) that edgeloop runs as pipeline steps; :mod:`pipeline_steps.dvc_stage` wraps the
same functions as tiny command-line stages that read and write files, for ``dvc repro``. The
package imports nothing from edgeloop or DVC, so it works in either venv: the benchmark copies
it into each temporary project, as a user's repository would hold it.
"""
