/**
 * The console's one static file, served from the gateway (CSP `default-src 'self'`: no inline style or
 * script). Colours meet WCAG 2.1 AA contrast (4.5:1 for text) on their backgrounds; focus is visible.
 */
export const CONSOLE_CSS = `:root { color-scheme: light; --fg: #1a1a1a; --bg: #ffffff; --muted: #4a4a4a; --line: #c8c8c8;
  --accent: #0b4f8a; --ok: #0f5d1f; --bad: #9b1c1c; --mark: #fff3b0; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--bg); padding: .5rem; z-index: 1; }
header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; padding: .75rem 1.5rem;
  border-bottom: 1px solid var(--line); background: #f3f5f8; }
.brand { font-weight: 700; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: underline; }
.logout { margin-left: auto; display: flex; gap: .75rem; align-items: center; }
main { padding: 1rem 1.5rem 3rem; max-width: 80rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.15rem; margin: 0 0 .5rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.25rem; margin: 0 0 1.25rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
pre.args { background: #f6f8fa; border: 1px solid var(--line); padding: .75rem; overflow: auto; max-height: 28rem;
  white-space: pre-wrap; overflow-wrap: anywhere; font: 14px/1.45 ui-monospace, monospace; }
mark.inv { background: var(--mark); color: var(--bad); font-weight: 700; outline: 1px solid var(--bad); }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: flex-end; margin-bottom: 1rem; }
.filters label { margin: 0; }
input, textarea { font: inherit; padding: .35rem .5rem; border: 1px solid #767676; border-radius: 4px; }
textarea { width: 100%; }
button { font: inherit; padding: .4rem .9rem; border-radius: 4px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.approve { background: var(--ok); border-color: var(--ok); }
button.deny { background: var(--bad); border-color: var(--bad); }
.buttons { display: flex; gap: .75rem; margin-top: .5rem; }
a:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible, pre:focus-visible {
  outline: 3px solid #e07b00; outline-offset: 2px; }
.flash { border-left: 4px solid var(--accent); background: #eef4fa; padding: .5rem .75rem; }
table { border-collapse: collapse; width: 100%; margin: 0 0 2rem; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0 .5rem; }
th, td { border-bottom: 1px solid var(--line); padding: .4rem .5rem; text-align: left; vertical-align: top; }
td code { overflow-wrap: anywhere; }
th { background: #f3f5f8; }
`;
