"""KF Studio's pure-Python core: run specs, datasets, shapes, training, the run store, jobs and plots.

Nothing in this package imports Streamlit, and only the training side (build, train, hardware) imports
TensorFlow, lazily, so the web process stays light.
"""
