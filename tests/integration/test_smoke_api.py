import aiohttp


async def test_discovery_and_pod_create(apiserver):
    async with aiohttp.ClientSession() as s:
        async with s.get(apiserver.url + "/api/v1") as r:
            assert r.status == 200
        async with s.post(apiserver.url + "/api/v1/namespaces", json={"metadata": {"name": "default"}}) as r:
            assert r.status == 201, await r.text()
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        async with s.post(apiserver.url + "/api/v1/namespaces/default/pods", json=pod) as r:
            body = await r.json()
            assert r.status == 201, body
        async with s.get(apiserver.url + "/api/v1/namespaces/default/pods") as r:
            body = await r.json()
            assert [p["metadata"]["name"] for p in body["items"]] == ["web"]
