"""A stand-in Kubernetes API for k8s/ha/credentials/generate.sh (test_ha_credentials_job.py):
HTTPS on kubernetes.default.svc:443 with a throwaway CA, accepting POST
/api/v1/namespaces/<ns>/secrets with the service account's bearer token: 201 the first time,
409 when that Secret exists, 403 when told to fail. Run as root under `unshare -n -m` with
the script's paths bind-mounted (see the test); prints each request body as a JSON line."""

import http.server
import json
import ssl
import sys

cert, key, token, fail = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "fail"
secrets = {}


class API(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = self.headers.get("Authorization") == f"Bearer {token}"
        obj = json.loads(body) if ok else {}
        print(json.dumps({"path": self.path, "auth": ok, "content_type":
                          self.headers.get("Content-Type"), "body": obj}), flush=True)
        name = obj.get("metadata", {}).get("name")
        code = 401 if not ok else 403 if fail else 409 if name in secrets else 201
        secrets.setdefault(name, obj)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"kind": "Status", "code": code}).encode())

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 443), API)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
