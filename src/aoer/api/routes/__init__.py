"""The API's routers; `aoer.api.app.default_routers` lists the ones every app includes."""
