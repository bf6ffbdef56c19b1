"""`talkface serve`: one process that loads the models once and serves a web page and an HTTP API.

limits.py: what an upload may be (size, kind, audio length), checked by content.
jobs.py: the bounded queue and the one worker that runs generations one at a time.
models.py: the two stages, loaded once at start-up.
app.py: the FastAPI routes (page, /v1/generate, jobs, /healthz).
page.html: the page (plain HTML and JavaScript, no build step).
"""
