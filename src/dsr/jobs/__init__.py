"""dsr.jobs: the runs a command starts — training, evaluation, distillation, the demo.

Orchestration lives here, above the model packages: a job reads files, builds the parts (backends,
searchers, encoders, rankers) and calls them. No model package imports a job.
"""
