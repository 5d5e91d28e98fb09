# The seed's FastAPI app, its `/` route (bench/http.sh runs it under uvicorn):
#   /usr/bin/python3 -m uvicorn fastapi_app:app --port P --log-level warning
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root():
    return {"message": "Hello world"}
