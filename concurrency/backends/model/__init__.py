"""The model backend: a deterministic scheduler for `random`, `pct` and `dfs`.

Layout (after shuttle): `runtime` runs one execution of simulated threads,
`sync` and `thread` are the primitives it schedules, `scheduler/` holds one
file per strategy, `search` drives many executions and shrinks a failure,
`trace` renders it, `token` encodes a schedule for replay, `api` is the
public entry (`check`, `replay`, `Report`, `ScheduleFailure`).
"""
