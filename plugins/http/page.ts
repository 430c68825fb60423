/**
 * The page at `/`: pick a table and a moment, see its rows as served then beside the lineage
 * picture, click an execution to see its record. Plain HTML and a little script, no build step;
 * it calls the same endpoints as anyone, with the credentials typed into it (HTTP Basic).
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>provenance-proxy</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  form { display: flex; gap: .6em; flex-wrap: wrap; align-items: end; margin-bottom: 1em; }
  label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
  main { display: flex; gap: 2em; align-items: flex-start; }
  table { border-collapse: collapse; }
  th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: left; }
  th { background: #f3f3f3; }
  #lineage svg { max-width: 640px; height: auto; }
  #lineage g[id^="execution:"] { cursor: pointer; }
  #error { color: #b00; }
  pre { background: #f7f7f7; padding: .8em; max-width: 640px; max-height: 24em; overflow: auto; white-space: pre-wrap; word-break: break-all; }
</style>
</head>
<body>
<h1>provenance-proxy</h1>
<form id="pick">
  <label>user <input id="user" value="postgres" autocomplete="username"></label>
  <label>password <input id="password" type="password" autocomplete="current-password"></label>
  <label>table <input id="table" list="tables" placeholder="public.customers" required></label>
  <datalist id="tables"></datalist>
  <label>moment (empty: now) <input id="moment" placeholder="2026-10-27T10:00:00Z"></label>
  <button type="submit">Show</button>
</form>
<p id="error"></p>
<main>
  <section><h2>Rows</h2><table id="rows"></table></section>
  <section><h2>Lineage</h2><div id="lineage"></div><h3>Execution</h3><pre id="execution">Click an execution in the picture.</pre></section>
</main>
<script>
const $ = (id) => document.getElementById(id);
function auth() {
  return { Authorization: 'Basic ' + btoa(unescape(encodeURIComponent($('user').value + ':' + $('password').value))) };
}
async function get(path, as) {
  const r = await fetch(path, { headers: auth() });
  if (!r.ok) {
    const e = await r.json().catch(() => ({ code: String(r.status), message: r.statusText }));
    throw new Error(e.code + ': ' + e.message);
  }
  return as === 'text' ? r.text() : r.json();
}
function cell(tag, text) {
  const c = document.createElement(tag);
  c.textContent = text === null ? 'NULL' : typeof text === 'object' ? JSON.stringify(text) : String(text);
  return c;
}
async function show(ev) {
  ev.preventDefault();
  $('error').textContent = '';
  const q = new URLSearchParams();
  if ($('moment').value.trim() !== '') q.set('as_of', $('moment').value.trim());
  const table = encodeURIComponent($('table').value.trim());
  try {
    const [data, svg] = await Promise.all([get('/data/' + table + '?' + q), get('/lineage/' + table + '?' + q + '&format=svg', 'text')]);
    const rows = $('rows');
    rows.replaceChildren();
    const head = document.createElement('tr');
    for (const c of data.columns) head.append(cell('th', c.name));
    rows.append(head);
    for (const row of data.rows) {
      const tr = document.createElement('tr');
      for (const c of data.columns) tr.append(cell('td', row[c.name]));
      rows.append(tr);
    }
    $('lineage').innerHTML = svg;
  } catch (e) {
    $('error').textContent = e.message;
  }
}
$('pick').addEventListener('submit', show);
$('lineage').addEventListener('click', async (ev) => {
  const node = ev.target.closest('g[id^="execution:"]');
  if (!node) return;
  try {
    $('execution').textContent = JSON.stringify(await get('/executions/' + node.id.slice('execution:'.length)), null, 2);
  } catch (e) {
    $('execution').textContent = e.message;
  }
});
$('user').addEventListener('change', async () => {
  try {
    const names = await get('/tables');
    $('tables').replaceChildren(...names.map((n) => Object.assign(document.createElement('option'), { value: n })));
  } catch { /* the list is only a help */ }
});
</script>
</body>
</html>
`;
