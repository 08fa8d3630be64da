"""Flow authoring tools behind the command line: `alap check` (check*.py), `alap test`
(convtest*.py), `alap graph` (graph.py), `alap translate` (translate.py), `alap new`
(scaffold.py) and the Babel extractor for YAML flows (babel_extract.py). Nothing on the request
path imports this package: `alap serve` and `alap dev` run `check.require_servable` before
they serve (and `alap dev` before installing a reloaded engine)."""
