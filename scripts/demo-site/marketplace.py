#!/usr/bin/env python3
"""The demo site's Marketplace (scripts/demo-site.sh): what a StratusLab Marketplace answered
to the client and to stratusd, served from a directory.

  GET  /metadata/<id>   every manifest stored for <id>, as one <metadata> document (404 when none)
  GET  /metadata        the ids it holds, one per line
  POST /metadata        stores an uploaded manifest (raw XML, or the client's multipart upload)
                        under its dcterms:identifier; 201 with the id
  GET  /images/<name>   an image file

Usage: marketplace.py DIR [--port-file FILE]   (listens on 127.0.0.1, port chosen by the system
and written to FILE once it accepts connections)
"""
import http.server
import os
import re
import sys
import threading

ID_RE = re.compile(r'^[A-Za-z0-9_-]{1,64}$')
IDENTIFIER_RE = re.compile(rb'<dcterms:identifier>\s*([A-Za-z0-9_-]{1,64})\s*</dcterms:identifier>')
RDF_RE = re.compile(rb'<rdf:RDF\b.*?</rdf:RDF>', re.S)
MAX_UPLOAD = 1 << 20
LOCK = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'StratusLabMarketplace/demo'

    def log_message(self, fmt, *args):
        sys.stderr.write('%s %s\n' % (self.log_date_time_string(), fmt % args))

    def answer(self, status, body, ctype='text/plain'):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def manifests(self, image_id):
        d = os.path.join(self.server.root, 'metadata', image_id)
        if not os.path.isdir(d):
            return []
        out = []
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), 'rb') as f:
                out.append(f.read())
        return out

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split('?', 1)[0].rstrip('/')
        if path == '/metadata':
            ids = sorted(os.listdir(os.path.join(self.server.root, 'metadata')))
            return self.answer(200, ''.join(i + '\n' for i in ids).encode())
        if path.startswith('/metadata/'):
            image_id = path[len('/metadata/'):]
            entries = self.manifests(image_id) if ID_RE.match(image_id) else []
            if not entries:
                return self.answer(404, b'not found\n')
            rdfs = b''.join(m for e in entries for m in RDF_RE.findall(e))
            body = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<metadata>' + rdfs + b'</metadata>\n'
            return self.answer(200, body, 'application/xml')
        if path.startswith('/images/'):
            name = path[len('/images/'):]
            if '/' in name or name.startswith('.'):
                return self.answer(404, b'not found\n')
            full = os.path.join(self.server.root, 'images', name)
            if not os.path.isfile(full):
                return self.answer(404, b'not found\n')
            size = os.path.getsize(full)
            self.send_response(200)
            self.send_header('Content-Type', 'application/octet-stream')
            self.send_header('Content-Length', str(size))
            self.end_headers()
            if self.command == 'HEAD':
                return
            with open(full, 'rb') as f:
                while True:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    self.wfile.write(chunk)
            return
        self.answer(404, b'not found\n')

    def do_POST(self):
        path = self.path.split('?', 1)[0].rstrip('/')
        if path != '/metadata':
            return self.answer(404, b'not found\n')
        length = int(self.headers.get('Content-Length') or 0)
        if length <= 0 or length > MAX_UPLOAD:
            return self.answer(400, b'bad manifest size\n')
        body = self.rfile.read(length)
        found = IDENTIFIER_RE.search(body)
        rdfs = RDF_RE.findall(body)
        if not found or not rdfs:
            return self.answer(400, b'no identifier in the manifest\n')
        image_id = found.group(1).decode()
        d = os.path.join(self.server.root, 'metadata', image_id)
        with LOCK:
            os.makedirs(d, exist_ok=True)
            n = len(os.listdir(d))
            with open(os.path.join(d, 'upload-%03d.xml' % n), 'wb') as f:
                f.write(b''.join(rdfs))
        self.answer(201, (image_id + '\n').encode())


def main():
    root = sys.argv[1]
    port_file = None
    if '--port-file' in sys.argv:
        port_file = sys.argv[sys.argv.index('--port-file') + 1]
    os.makedirs(os.path.join(root, 'metadata'), exist_ok=True)
    os.makedirs(os.path.join(root, 'images'), exist_ok=True)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.root = root
    if port_file:
        tmp = port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % server.server_address[1])
        os.rename(tmp, port_file)
    server.serve_forever()


if __name__ == '__main__':
    main()
