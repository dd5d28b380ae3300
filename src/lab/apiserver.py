#!/usr/bin/env python3
"""A Kubernetes API server for kroute's tests: PyPI's kmock (the Kopf
project's KubernetesEmulator: stateful objects; list, get, create, patch,
delete; watch streams) on a loopback port, with the least added that the
real `kube` crate's watchers and kroute need.

Added here (kmock 0.8 lacks them):
* resourceVersion: every write gets the next number (objects, list
  metadata, watch events, DELETED events too), counting on from the time
  of start, so a restarted server's versions are newer;
* watch from a resourceVersion: only the events after it are sent (kmock
  replays every object as ADDED on each watch); a version from before
  this server started (a restarted server has no history) answers
  `410 Gone`, which makes the client list again, as a real API server's
  compacted history does;
* metadata.uid and metadata.creationTimestamp on create;
* error Status reasons as the API server spells them (`NotFound`,
  `AlreadyExists`: clients tell "absent" from other errors by them);
* --state FILE: the objects are saved on every change and loaded at start,
  so "the API server stopped and came back" keeps the cluster;
* the resources kroute reads, declared for discovery.

Not implemented (kroute does not rely on them): label and field
selectors (every object is returned; kroute filters itself), pagination
(`limit`/`continue`: one page), watch bookmarks, `timeoutSeconds`,
optimistic concurrency (a stale resourceVersion in a write is not
refused), strategic merge and server-side apply (a PATCH merges JSON
objects and replaces lists), admission, defaulting, validation against
the CRD schemas, owner-reference garbage collection, authentication.

Usage: apiserver.py --port-file FILE [--host ADDR] [--port N] [--state FILE]
"""

import argparse
import asyncio
import json
import os
import time
import uuid

import aiohttp.web
import kmock

RESOURCES = {
    # resource: (kind, namespaced, subresources)
    'v1/nodes': ('Node', False, ['status']),
    'v1/services': ('Service', True, ['status']),
    'v1/secrets': ('Secret', True, []),
    'discovery.k8s.io/v1/endpointslices': ('EndpointSlice', True, []),
    'cilium.io/v2/ciliumnodes': ('CiliumNode', False, []),
    'kroute.io/v1alpha1/krouteconfigs': ('KrouteConfig', False, ['status']),
    'kroute.io/v1alpha1/kroutenodestates': ('KrouteNodeState', False, ['status']),
}

# Status reasons by HTTP code, as the API server spells them.
REASONS = {404: 'NotFound', 409: 'AlreadyExists'}


def key_of(resource):
    """'v1/nodes' for the core group, 'group/version/plural' else."""
    group = '' if resource.group in (None, '') else resource.group
    return f'{resource.version}/{resource.plural}' if not group else f'{group}/{resource.version}/{resource.plural}'


class Log:
    """Stands in for kmock's per-resource event bus: numbers and records
    every event and wakes the watchers."""

    def __init__(self, server, resource):
        self.server = server
        self.resource = resource

    async def put(self, event):
        await self.server.record(self.resource, event)


class ApiServer(kmock.KubernetesEmulator):
    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.rv = int(time.time() * 1000)
        self.started_rv = self.rv
        self.events = []  # (rv, resource key, event)
        self.changed = asyncio.Condition()
        self.state_file = None

        class Buses(dict):
            def __missing__(buses, resource):
                buses[resource] = Log(self, resource)
                return buses[resource]

        self._buses = Buses()
        for res, (kind, namespaced, subresources) in RESOURCES.items():
            self.resources[res] = {
                'kind': kind, 'namespaced': namespaced, 'singular': kind.lower(),
                'verbs': ['get', 'list', 'watch', 'create', 'patch', 'update', 'delete'],
                'subresources': subresources,
            }

    async def _render_error(self, exc):
        # Real reasons (kube's `get_opt` takes a 404 for "absent" only with
        # reason NotFound; kmock says "Object Not Found").
        if isinstance(exc, kmock.KubernetesError) and exc.status in REASONS:
            return aiohttp.web.json_response({
                'apiVersion': 'v1', 'kind': 'Status', 'metadata': {},
                'code': exc.status, 'status': 'Failure',
                'reason': REASONS[exc.status], 'message': exc.message or REASONS[exc.status],
                'details': {},
            }, status=exc.status)
        return await super()._render_error(exc)

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    async def _handle(self, request):
        if request.resource is not None and isinstance(request.data, dict):
            meta = request.data.setdefault('metadata', {})
            if request.action == kmock.action.CREATE:
                meta.setdefault('uid', str(uuid.uuid4()))
                meta.setdefault('creationTimestamp', time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
                meta['resourceVersion'] = self.next_rv()
            elif request.action == kmock.action.UPDATE:
                meta['resourceVersion'] = self.next_rv()
        return await super()._handle(request)

    async def record(self, resource, event):
        obj = event.get('object', {})
        meta = obj.setdefault('metadata', {})
        if event.get('type') == 'DELETED':
            meta['resourceVersion'] = self.next_rv()
        rv = int(meta.get('resourceVersion') or self.next_rv())
        async with self.changed:
            self.events.append((rv, key_of(resource), event))
            self.changed.notify_all()
        self.save()

    async def _serve_list(self, request):
        payload = await super()._serve_list(request)
        kind = RESOURCES.get(key_of(request.resource), ('Object',))[0]
        payload['kind'] = f'{kind}List'
        payload['apiVersion'] = request.resource.version if not request.resource.group else f'{request.resource.group}/{request.resource.version}'
        payload['metadata'] = {'resourceVersion': str(self.rv)}
        return payload

    async def _serve_watch(self, request):
        yield b''
        key = key_of(request.resource)
        since = request.params.get('resourceVersion') or '0'
        try:
            since = int(since)
        except ValueError:
            since = -1
        if since != 0 and since < self.started_rv:
            yield {'type': 'ERROR', 'object': {
                'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                'message': f'too old resource version: {since} ({self.started_rv})',
                'reason': 'Expired', 'code': 410}}
            return
        if since == 0:
            # "Any version": the current objects, then what follows.
            payload = await super()._serve_list(request)
            for obj in payload['items']:
                yield {'type': 'ADDED', 'object': obj}
            since = self.rv
        position = 0
        while True:
            async with self.changed:
                while position >= len(self.events):
                    await self.changed.wait()
                batch = self.events[position:]
                position = len(self.events)
            for rv, res, event in batch:
                if rv <= since or res != key:
                    continue
                meta = event.get('object', {}).get('metadata', {})
                if request.namespace is not None and meta.get('namespace') != request.namespace:
                    continue
                if request.name is not None and meta.get('name') != request.name:
                    continue
                yield event

    def save(self):
        if not self.state_file:
            return
        objects = []
        for (resource, namespace, name), obj in self.objects.items():
            if not obj.deleted:
                objects.append({'resource': key_of(resource), 'namespace': namespace,
                                'name': name, 'object': obj.raw})
        tmp = self.state_file + '.tmp'
        with open(tmp, 'w') as f:
            json.dump({'rv': self.rv, 'objects': objects}, f)
        os.replace(tmp, self.state_file)

    def load(self, path):
        self.state_file = path
        if not os.path.exists(path):
            return
        with open(path) as f:
            saved = json.load(f)
        for o in saved['objects']:
            self.objects[o['resource'], o['namespace'], o['name']] = o['object']
        self.rv = max(self.rv, int(saved.get('rv', 0)) + 1)
        self.started_rv = self.rv


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--port-file', required=True)
    parser.add_argument('--state')
    args = parser.parse_args()
    async with ApiServer() as server:
        if args.state:
            server.load(args.state)
        async with kmock.Server(server, host=args.host, port=args.port or None) as http:
            tmp = args.port_file + '.tmp'
            with open(tmp, 'w') as f:
                f.write(str(http.port))
            os.replace(tmp, args.port_file)
            await asyncio.Event().wait()


if __name__ == '__main__':
    asyncio.run(main())
