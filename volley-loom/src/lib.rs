//! Checks of volley's lock-free hand-offs under `loom`: see `tests/`. The
//! library itself is empty; the tests include volley's source files by path,
//! so what is checked is the code volley runs.
