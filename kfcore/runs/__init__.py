"""Runs: where they are kept, where they train, and what a server allows.

store (RunStore, RunRecord: SQLite plus model files, the only thing pages and workers share), jobs (the local
worker pool JobManager, execute_run, continue_run, the Predictor), executors (executor_from_env: the worker pool
or RayExecutor), limits (Limits.from_env, check_run, check_data_access, can_modify, can_delete), sweep (load_sweep,
parse_sweep: a sweep read, checked and counted), sweeprun (start_local, run_local: trials on the pool), sweepray
(run_ray: trials through Ray Tune) and sweepresults (trial_row, best, seed_stats).
"""
