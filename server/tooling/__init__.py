"""Flow authoring tools behind the command line: `alap check` (check.py), `alap test`
(convtest.py), `alap graph` (graph.py) and the Babel extractor for YAML flows
(babel_extract.py). Nothing on the request path imports this package."""
