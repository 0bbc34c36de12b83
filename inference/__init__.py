"""The inference library: frame sources, detectors, zones, VLM, agent, model pool and the per-camera loop.

Imports no Django app or framework: the same code runs in the worker, vad_eval, the tests and bench/.
"""
