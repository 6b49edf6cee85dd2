"""Training: the code that runs in a worker (it imports TensorFlow; the web process never imports this package's
trainer).

train (train(spec, on_event), prepare, assess), fastloop (run_epochs: several epochs per compiled call), evaluate
(confusion_matrix, per_class_metrics, decision_boundary), predict (predict_frame: raw table rows through a run's
model and recipe), hardware (describe_host, configure), snapshot (LiveView: the live pictures of a model) and
coach (read_results: what a finished run says, apply: the one change to try).
"""
