"""A run taken anywhere: formats (export(store, run, format, out): every format by name, in_subprocess for the
dashboard), script (python_script: the standalone Keras script, metrics_csv), convert (SavedModel, TFLite, ONNX),
card (model_card: one offline HTML file), bundle (write_bundle, import_bundle) and tensorboard (write_events)."""
