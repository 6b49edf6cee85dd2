"""Streamlit glue shared by the pages: session state, cached resources, bound widgets, sidebar, live run view."""
