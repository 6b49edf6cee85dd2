"""What a person sees of runs, as plain data and Plotly figures (no Streamlit, no TensorFlow): plots (every figure
builder), runview (status_line, progress, estimate_wait), compare (summary_row, epoch_facts, config_diff) and samples
(rebuild_split, cell, largest_errors: the test samples behind the numbers)."""
