"""The live dashboard: server-rendered pages, inline-SVG charts, updates over the API's SSE."""
