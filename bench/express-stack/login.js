'use strict';
// node login.js BASE_URL N: logs N distinct users in through BASE_URL
// (POST /api/auth/login, a browser User-Agent so the edge does not bypass
// it) and prints each one's session cookie ("connect.sid=...") on a line.
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

async function main() {
  const [base, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  const lines = [];
  const parallel = 16;
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      const res = await fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': UA },
        body: JSON.stringify({ username: `user${i}`, password: 'pw' }),
      });
      const cookie = (res.headers.getSetCookie() || [])
        .map((c) => c.split(';')[0])
        .find((c) => c.startsWith('connect.sid='));
      if (res.status !== 200 || !cookie) {
        throw new Error(`login ${i}: status ${res.status}, cookie ${cookie || 'none'}`);
      }
      await res.arrayBuffer();
      lines.push(cookie);
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err) => {
  console.error(err.message || err);
  process.exit(1);
});
