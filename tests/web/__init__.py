"""The control plane over HTTP: the JSON API and the dashboard (httpx, and a real browser via Playwright)."""
