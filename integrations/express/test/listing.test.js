'use strict';
// SessionGridStore's all / ids / clear on a three-node cluster
// (replication factor 3, W 2): every session listed exactly once, the
// pages merged across members, one node killed and everything still
// listed, then clear leaves nothing on any node.
const { SessionGridStore } = require('..');
const { rawClient, startCluster, stopAll, waitFor } = require('./harness');

let cluster;
let store;
const ids = [];

function sess(data) {
  const maxAge = 3600 * 1000;
  return { cookie: { originalMaxAge: maxAge, expires: new Date(Date.now() + maxAge).toISOString(), path: '/' }, ...data };
}

beforeAll(async () => {
  cluster = await startCluster({ args: ['--allow-client-ids'] });
  store = new SessionGridStore({ target: cluster.target, timeout: 3000, allowClear: true });
  for (let i = 0; i < 1050; i++) ids.push(require('crypto').randomBytes(24).toString('base64url'));
  for (let i = 0; i < ids.length; i += 50) {
    await Promise.all(ids.slice(i, i + 50).map((id, k) => store.set(id, sess({ k: i + k }))));
  }
}, 90000);

afterAll(async () => {
  if (store) store.close();
  await stopAll();
});

// The listing through one node alone (each node coordinates its own).
function storeOn(i) {
  return new SessionGridStore({ target: cluster.nodes[i].address, timeout: 3000, allowClear: true });
}

test('each node lists every session exactly once, past one page', async () => {
  for (let i = 0; i < cluster.nodes.length; i++) {
    const s = storeOn(i);
    try {
      const listed = await s.ids();
      expect(listed.length).toBe(ids.length);
      expect(new Set(listed)).toEqual(new Set(ids));
      const all = await s.all();
      expect(all.length).toBe(ids.length);
      const byId = new Map(all.map((x) => [x.id, x]));
      expect(byId.get(ids[7])).toMatchObject({ id: ids[7], k: 7 });
    } finally {
      s.close();
    }
  }
}, 60000);

test('with one node of three killed the others still list everything, and clear empties the cluster', async () => {
  await store.destroy(ids[0]);
  cluster.nodes[2].proc.child.kill('SIGKILL');
  await cluster.nodes[2].proc.exitedPromise;
  const want = new Set(ids.slice(1));
  for (const i of [0, 1]) {
    const s = storeOn(i);
    try {
      // Right after the kill the dead node's scan fails (W-1 = 1 member
      // may be missing); the listing stays complete.
      const listed = await s.ids();
      expect(listed.length).toBe(want.size);
      expect(new Set(listed)).toEqual(want);
    } finally {
      s.close();
    }
  }
  const s = storeOn(0);
  try {
    expect(await s.clear()).toBe(want.size);
    await waitFor(async () => (await s.ids()).length === 0, 'the listing to be empty after clear');
    const other = storeOn(1);
    try {
      expect(await other.ids()).toEqual([]);
    } finally {
      other.close();
    }
    const raw = rawClient(cluster.nodes[1].address);
    try {
      await expect(raw.call('Get', { id: ids[5] })).rejects.toMatchObject({ code: 5 });
    } finally {
      raw.close();
    }
  } finally {
    s.close();
  }
}, 60000);
