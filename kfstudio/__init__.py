"""KF Studio's dashboard as an installed command: `kfstudio` (kfstudio.launch) runs kfstudio.app in Streamlit."""
