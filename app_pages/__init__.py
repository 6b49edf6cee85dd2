"""The dashboard's pages: each a short Streamlit script that kfstudio.app navigates to."""
