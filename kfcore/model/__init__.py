"""The model a spec describes, in pure Python until it is built: shapes (infer_shapes, ShapeReport: output shapes
and parameter counts), build (build_model: the keras.Sequential), advice (model_advice: stacks that cannot learn
well) and presets (PRESETS: ready-made stacks)."""
