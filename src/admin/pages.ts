/**
 * The console's HTML, rendered on the server: no script at all, one stylesheet from /admin/static/,
 * plain forms (each with the session's CSRF token). Accessible by construction: landmarks, one h1 per
 * page, tables with captions and header cells, every control labelled, visible focus, and colours with
 * a contrast ratio of at least 4.5:1 (console.css). Everything from outside is escaped, and characters
 * a browser would hide (zero-width, bidi overrides, controls) are shown as marked `\u{…}`.
 */
import { definitionLabel, lineDiff, prettyDefinition } from '../definitions/diff.ts';
import type {
  ApprovalRecord,
  AuditRow,
  CredentialBlock,
  DefinitionRecord,
  GrantRecord,
  LeaseRecord,
} from '../storage/types.ts';
import { escapeCodePoint, INVISIBLE } from '../util/visible.ts';
import type { TimelineFilter } from './actions.ts';
import type { AdminRole } from './roles.ts';
import type { AdminSession } from './session.ts';

/** HTML-escapes `s` (text and attribute values). */
export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Escapes `s` and shows each hidden character as a marked `\u{…}` (the approver sees what will run). */
export function shown(s: string, keepNewlines = false): string {
  let out = '';
  let last = 0;
  for (const m of s.matchAll(INVISIBLE)) {
    // Pretty JSON's own line breaks (a newline inside a string value is the JSON escape `\n`).
    if (keepNewlines && m[0] === '\n') continue;
    const at = m.index ?? 0;
    out += esc(s.slice(last, at));
    const code = escapeCodePoint(m[0]);
    out += `<mark class="inv" title="hidden character ${esc(code)}">${esc(code)}</mark>`;
    last = at + m[0].length;
  }
  return out + esc(s.slice(last));
}

/** Arguments as pretty JSON, one member per line in canonical (sorted) order: diff-friendly. */
export function prettyArguments(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}

const iso = (ms: number | undefined): string => (ms === undefined ? '-' : new Date(ms).toISOString());

function age(ms: number, now: number): string {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

interface Frame {
  title: string;
  session: AdminSession;
  roles: ReadonlySet<AdminRole>;
  current: string;
  flash: string | undefined;
}

/** The page frame: skip link, navigation, the user and a logout form. */
function layout(f: Frame, body: string): string {
  const links: [string, string, AdminRole][] = [
    ['/admin/', 'Approvals', 'approver'],
    ['/admin/grants', 'Grants', 'admin'],
    ['/admin/credentials', 'Credentials', 'admin'],
    ['/admin/definitions', 'Definitions', 'admin'],
    ['/admin/audit', 'Audit', 'admin'],
  ];
  const nav = links
    .filter(([, , role]) => f.roles.has(role))
    .map(
      ([href, label]) =>
        `<li><a href="${href}"${href === f.current ? ' aria-current="page"' : ''}>${label}</a></li>`,
    )
    .join('');
  const flash = f.flash ? `<p class="flash" role="status">${shown(f.flash)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(f.title)} · Gatehouse console</title>
<link rel="stylesheet" href="/admin/static/console.css">
</head><body>
<a class="skip" href="#main">Skip to content</a>
<header><span class="brand">Gatehouse console</span>
<nav aria-label="Console sections"><ul>${nav}</ul></nav>
<form method="post" action="/admin/logout" class="logout"><input type="hidden" name="csrf" value="${esc(f.session.csrf)}">
<span>Signed in as <strong>${shown(f.session.user)}</strong> (${[...f.roles].join(', ') || 'no role'})</span>
<button type="submit">Sign out</button></form></header>
<main id="main"><h1>${esc(f.title)}</h1>${flash}${body}</main>
</body></html>`;
}

function csrfField(s: AdminSession): string {
  return `<input type="hidden" name="csrf" value="${esc(s.csrf)}">`;
}

function who(agent: string, user: string | undefined): string {
  return user ? `${shown(agent)} for ${shown(user)}` : shown(agent);
}

/** Pending approval requests, each with its full arguments and approve/deny forms. */
export function approvalsPage(
  f: Omit<Frame, 'title' | 'current'>,
  rows: ApprovalRecord[],
  now: number,
): string {
  const cards = rows.map((r) => {
    const idAttr = esc(r.id);
    const decided =
      r.state === 'pending'
        ? `<form method="post" action="/admin/approvals/${idAttr}/decide" class="decide">${csrfField(f.session)}
<label for="reason-${idAttr}">Reason (recorded in the audit log)</label>
<textarea id="reason-${idAttr}" name="reason" rows="2" maxlength="1000"></textarea>
<div class="buttons"><button type="submit" name="decision" value="approve" class="approve">Approve</button>
<button type="submit" name="decision" value="deny" class="deny">Deny</button></div></form>`
        : `<p>${esc(r.state)}${r.decidedBy ? ` by ${shown(r.decidedBy)} via ${shown(r.channel ?? '-')}` : ''}${r.reason ? `: ${shown(r.reason)}` : ''}</p>`;
    return `<section class="card" aria-labelledby="h-${idAttr}">
<h2 id="h-${idAttr}"><code>${shown(r.tool)}</code> requested by ${who(r.agent, r.user)}</h2>
<dl>
<dt>Request</dt><dd><code>${esc(r.id)}</code></dd>
<dt>Owner</dt><dd>${shown(r.owner ?? '-')}</dd>
<dt>Delegation</dt><dd>${shown(r.actors.join(' ← ') || '-')}</dd>
<dt>Grant</dt><dd><code>${esc(r.grantId)}</code></dd>
<dt>Server</dt><dd>${shown(r.server)}</dd>
<dt>Policies</dt><dd>${shown(r.policies.join(', '))}</dd>
<dt>Attributes</dt><dd><code>${shown(JSON.stringify(r.attributes))}</code></dd>
<dt>Definition</dt><dd><code>sha256:${esc(r.definitionHash)}</code></dd>
<dt>Requested</dt><dd>${iso(r.createdAt)} (${age(r.createdAt, now)} ago)</dd>
<dt>Expires</dt><dd>${iso(r.expiresAt)}</dd>
</dl>
<h3 id="args-${idAttr}">Arguments (exactly what will run)</h3>
<pre class="args" aria-labelledby="args-${idAttr}" tabindex="0">${shown(prettyArguments(r.arguments), true)}</pre>
${decided}</section>`;
  });
  const body =
    rows.length === 0
      ? '<p>No approval request is waiting.</p>'
      : `<p>${rows.length} request(s) waiting. Approving releases exactly the call shown, once.</p>${cards.join('\n')}`;
  return layout({ ...f, title: 'Pending approvals', current: '/admin/' }, body);
}

/** Live grants with a revoke form each. */
export function grantsPage(f: Omit<Frame, 'title' | 'current'>, rows: GrantRecord[], now: number): string {
  const tr = rows
    .map(
      (g) => `<tr><td><code>${esc(g.id)}</code></td><td>${esc(g.kind)}</td><td>${who(g.agent, g.user)}</td>
<td>${shown(g.owner ?? '-')}</td><td>${g.tools === undefined ? '(policy)' : shown(g.tools.join(', '))}</td>
<td>${age(g.createdAt, now)}</td><td>${iso(g.expiresAt)}</td>
<td><form method="post" action="/admin/grants/${esc(g.id)}/revoke">${csrfField(f.session)}
<button type="submit" aria-label="Revoke grant ${esc(g.id)}">Revoke</button></form></td></tr>`,
    )
    .join('\n');
  const body = `<table><caption>${rows.length} live grant(s); revoking one ends its sessions, calls and credential leases and revokes the token that opened it</caption>
<thead><tr><th scope="col">Grant</th><th scope="col">Kind</th><th scope="col">Principal</th><th scope="col">Owner</th><th scope="col">Tools</th><th scope="col">Age</th><th scope="col">Expires</th><th scope="col">Action</th></tr></thead>
<tbody>${tr}</tbody></table>`;
  return layout({ ...f, title: 'Live grants', current: '/admin/grants' }, body);
}

/** Live credential leases (revoke) and blocks (unblock). */
export function credentialsPage(
  f: Omit<Frame, 'title' | 'current'>,
  leases: LeaseRecord[],
  blocks: CredentialBlock[],
  now: number,
): string {
  const lr = leases
    .map(
      (
        l,
      ) => `<tr><td><code>${esc(l.id)}</code></td><td><code>${esc(l.grantId)}</code></td><td>${shown(l.service)}</td>
<td>${esc(l.kind)}</td><td>${shown(l.credential)}</td><td>${who(l.agent, l.user)}</td><td>${age(l.createdAt, now)}</td><td>${iso(l.expiresAt)}</td>
<td><form method="post" action="/admin/leases/${esc(l.id)}/revoke">${csrfField(f.session)}
<button type="submit" aria-label="Revoke lease ${esc(l.id)}">Revoke</button></form></td></tr>`,
    )
    .join('\n');
  const br = blocks
    .map(
      (
        b,
      ) => `<tr><td>${esc(b.kind)}</td><td>${shown(b.name)}</td><td>${shown(b.reason)}</td><td>${iso(b.createdAt)}</td>
<td><form method="post" action="/admin/blocks/unblock">${csrfField(f.session)}
<input type="hidden" name="kind" value="${esc(b.kind)}"><input type="hidden" name="name" value="${esc(b.name)}">
<button type="submit" aria-label="Unblock ${esc(b.kind)} ${esc(b.name)}">Unblock</button></form></td></tr>`,
    )
    .join('\n');
  const body = `<table><caption>${leases.length} live credential lease(s)</caption>
<thead><tr><th scope="col">Lease</th><th scope="col">Grant</th><th scope="col">Service</th><th scope="col">Kind</th><th scope="col">Credential</th><th scope="col">Principal</th><th scope="col">Age</th><th scope="col">Expires</th><th scope="col">Action</th></tr></thead>
<tbody>${lr}</tbody></table>
<table><caption>${blocks.length} block(s): no new lease uses a blocked secret or service</caption>
<thead><tr><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Reason</th><th scope="col">Since</th><th scope="col">Action</th></tr></thead>
<tbody>${br}</tbody></table>`;
  return layout({ ...f, title: 'Credential leases and blocks', current: '/admin/credentials' }, body);
}

/**
 * Quarantined tool definitions (THREATS T13-T15): each waiting definition with the diff against its pin,
 * the scanner findings, and approve/reject forms bound to the hash shown (`gatehouse tools approve
 * TOOL --hash H`).
 */
export function definitionsPage(
  f: Omit<Frame, 'title' | 'current'>,
  rows: Array<{ waiting: DefinitionRecord; pin: DefinitionRecord | undefined }>,
  now: number,
): string {
  const cards = rows.map(({ waiting: r, pin }, i) => {
    const label = definitionLabel(r);
    const findings =
      r.findings.length === 0
        ? '<p>No scanner finding.</p>'
        : `<ul class="findings">${r.findings
            .map((x) => `<li><strong>${esc(x.type)}</strong> [${x.start},${x.end}) ${shown(x.detail)}</li>`)
            .join('')}</ul>`;
    const diff = lineDiff(pin ? prettyDefinition(pin.definition) : '', prettyDefinition(r.definition));
    const hidden = (name: string, value: string): string =>
      `<input type="hidden" name="${name}" value="${esc(value)}">`;
    return `<section class="card" aria-labelledby="d-${i}">
<h2 id="d-${i}"><code>${shown(label)}</code> ${esc(r.status)}${pin ? ' (changed since approved)' : ' (never approved)'}</h2>
<dl>
<dt>Server</dt><dd>${shown(r.server)}</dd>
<dt>Kind</dt><dd>${esc(r.kind)}</dd>
<dt>Pinned</dt><dd>${pin ? `<code>sha256:${esc(pin.hash)}</code>` : 'none'}</dd>
<dt>Waiting</dt><dd><code>sha256:${esc(r.hash)}</code></dd>
<dt>First seen</dt><dd>${iso(r.firstSeen)} (${age(r.firstSeen, now)} ago)</dd>
${r.decidedBy ? `<dt>Rejected by</dt><dd>${shown(r.decidedBy)}</dd>` : ''}
</dl>
<h3 id="f-${i}">Scanner findings (${r.findings.length})</h3>
${findings}
<h3 id="x-${i}">Definition: pinned → waiting (<code>-</code> removed, <code>+</code> added)</h3>
<pre class="args" aria-labelledby="x-${i}" tabindex="0">${shown(diff, true)}</pre>
<form method="post" action="/admin/definitions/decide" class="decide">${csrfField(f.session)}
${hidden('server', r.server)}${hidden('kind', r.kind)}${hidden('name', r.name)}${hidden('hash', r.hash)}
<div class="buttons"><button type="submit" name="decision" value="approve" class="approve">Approve this definition</button>
${r.status === 'pending' ? '<button type="submit" name="decision" value="reject" class="deny">Reject</button>' : ''}</div></form>
</section>`;
  });
  const body =
    rows.length === 0
      ? '<p>No tool definition waits for approval.</p>'
      : `<p>${rows.length} definition(s) quarantined: hidden from agents and refused until approved. Approving makes exactly the definition shown the pin.</p>${cards.join('\n')}`;
  return layout({ ...f, title: 'Quarantined definitions', current: '/admin/definitions' }, body);
}

/** The event of a stored audit record (its body is `{ "event": … }` plus the chain fields). */
export function auditEventOf(r: AuditRow): Record<string, unknown> {
  const body = JSON.parse(r.body) as { event?: Record<string, unknown> };
  return body.event ?? {};
}

function summary(r: AuditRow): string {
  try {
    const e = auditEventOf(r);
    const parts: string[] = [];
    const approval = e['approval'] as Record<string, unknown> | undefined;
    if (approval?.['approver']) parts.push(`approver ${String(approval['approver'])}`);
    if (approval?.['reason']) parts.push(`reason: ${String(approval['reason'])}`);
    const outcome = e['outcome'] as Record<string, unknown> | undefined;
    if (outcome?.['status'])
      parts.push(
        `outcome ${String(outcome['status'])}${outcome['errorCode'] ? ` (${String(outcome['errorCode'])})` : ''}`,
      );
    const detail = e['detail'] as Record<string, unknown> | undefined;
    if (detail?.['action']) parts.push(String(detail['action']));
    return parts.join('; ');
  } catch {
    return '';
  }
}

/** The newest audit records with filters. */
export function auditPage(
  f: Omit<Frame, 'title' | 'current'>,
  rows: AuditRow[],
  filter: TimelineFilter,
): string {
  const input = (name: keyof TimelineFilter, label: string): string =>
    `<label>${label} <input name="${name}" value="${esc(filter[name] ?? '')}"></label>`;
  const tr = rows
    .map(
      (
        r,
      ) => `<tr><td>${r.seq}</td><td>${iso(r.time)}</td><td>${esc(r.type)}</td><td>${r.agent ? who(r.agent, r.user) : shown(r.user ?? '-')}</td>
<td>${r.grantId ? `<code>${esc(r.grantId)}</code>` : '-'}</td><td>${shown(r.tool ?? '-')}</td><td>${shown(r.decision ?? '-')}</td><td>${shown(summary(r))}</td></tr>`,
    )
    .join('\n');
  const body = `<form method="get" action="/admin/audit" class="filters" role="search" aria-label="Filter the audit timeline">
${input('agent', 'Agent')}${input('user', 'User')}${input('grant', 'Grant')}${input('tool', 'Tool')}${input('decision', 'Decision')}
<button type="submit">Filter</button></form>
<table><caption>${rows.length} newest matching record(s), newest first</caption>
<thead><tr><th scope="col">Seq</th><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Principal</th><th scope="col">Grant</th><th scope="col">Tool</th><th scope="col">Decision</th><th scope="col">Details</th></tr></thead>
<tbody>${tr}</tbody></table>`;
  return layout({ ...f, title: 'Audit timeline', current: '/admin/audit' }, body);
}

/** A page outside the frame (signed out, errors). */
export function plainPage(title: string, html: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} · Gatehouse console</title>
<link rel="stylesheet" href="/admin/static/console.css">
</head><body><main id="main"><h1>${esc(title)}</h1>${html}</main></body></html>`;
}

/**
 * After the login: a same-origin page that moves on to the console. A redirect would not do: the
 * callback may be the end of a cross-site redirect chain (an external issuer), where a SameSite=Strict
 * cookie is not sent; a navigation this page starts is same-site. A meta refresh, as no script may run.
 */
export function signedInPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/admin/">
<title>Signed in · Gatehouse console</title><link rel="stylesheet" href="/admin/static/console.css">
</head><body><main id="main"><h1>Signed in</h1><p><a href="/admin/">Continue to the console</a></p></main></body></html>`;
}
