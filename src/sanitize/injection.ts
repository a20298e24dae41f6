/**
 * Injection signals (THREATS T18, T23, T24): a scorer for instruction-like content in data that an
 * agent will read. Each rule is a regular expression over the folded view of the text (NFKD, marks
 * dropped, lower case, confusables skeleton: `ѕуѕtеm` reads as `system`), with a weight. The score is
 * `1 - Π(1 - w)` over the distinct rules that matched (each rule counts once, at its weight), so one
 * strong marker or several weak signals reach the threshold, and a single weak signal ("you must", an
 * `act as` in documentation) does not. When the score reaches the profile's threshold, every signal
 * becomes a finding with its span in the original text; below it, none do.
 *
 * Two signals are about concealment rather than wording: a keyword that only matches after homoglyph
 * folding (`homoglyph`: the original spelled it with look-alike letters), and long runs of whitespace
 * that push text out of view (`whitespace-padding`).
 *
 * This is a tripwire for the marker-style attacks seen in the wild (fake `<IMPORTANT>` and
 * `<INFORMATION>` tags, "ignore previous instructions", chat-template tokens, role-play and tool-use
 * directives). It does not understand text: a plain-language task hijack ("What is the capital of
 * Brazil?" planted in an email) scores nothing. Do not rely on it alone (docs/sanitization.md).
 */
import { foldedView, hasLookalike, toOriginal, type View } from './text.ts';
import type { Finding } from './types.ts';

/** One rule: its id, weight, and a global regex over the folded (lower-case) view. */
interface Rule {
  readonly id: string;
  readonly weight: number;
  readonly re: RegExp;
  readonly detail: string;
  /**
   * Gate: every match contains one of these words (folded, whole word of `[a-z0-9_]`) or one of these
   * literal substrings; a rule whose gate is not met is not run (see {@link gate}).
   */
  readonly words: readonly string[];
  readonly literals: readonly string[];
}

const PREV =
  '(?:previous|prior|above|earlier|preceding|past|original|initial|former|foregoing|existing|current|old|system|developer|all)';
const ORDERS =
  '(?:instructions?|prompts?|directions?|directives?|rules?|guidelines?|commands?|context|messages?|guidance|tasks?|orders?|constraints?|programming|input|requests?|content|questions?|queries|conversation|statements?|steps?)';
/** What an agent is told (narrower than {@link ORDERS}: "stop following the guidance" is not an attack). */
const TOLD = '(?:instructions?|directives?|prompts?|programming|orders|rules|guidelines)';
const IGNORE = '(?:ignore|disregard|forget|overlook|bypass|override|neglect|abandon|discard|skip)';
const MODEL = String.raw`(?:ai|assistant|chatbot|language model|llm|gpt(?:-?\d\S*)?|claude|gemini|llama|copilot|agent|model|bot)`;

const IGNORE_WORDS = [
  'ignore',
  'disregard',
  'forget',
  'overlook',
  'bypass',
  'override',
  'neglect',
  'abandon',
  'discard',
  'skip',
];
const MODEL_WORDS = [
  'ai',
  'assistant',
  'chatbot',
  'language',
  'llm',
  'gpt',
  'claude',
  'gemini',
  'llama',
  'copilot',
  'agent',
  'model',
  'bot',
  'dear',
  'hey',
  'attention',
  'hello',
  'hi',
];

const RULES: readonly Rule[] = [
  {
    id: 'fake-tag',
    words: [],
    literals: ['<'],
    weight: 0.75,
    detail: 'fake instruction tag',
    re: /<\s*\/?\s*(?:important|information|instructions?|system(?:[ _-]?(?:prompt|mode|message|override))?|sys|admin(?:istrator)?|secret[ _-]?instructions?|hidden|override|developer(?:[ _-]?mode)?)\s*>/g,
  },
  {
    id: 'chat-template',
    words: [],
    literals: ['<|', '[inst]', '[/inst]', '<<sys>>', '<</sys>>', '_of_turn>', '##'],
    weight: 0.75,
    detail: 'chat template token',
    re: /<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id)\|>|\[\/?inst\]|<<\/?sys>>|<\/?start_of_turn>|<\/?end_of_turn>|(?:^|\n)\s*#{2,}\s*(?:system|instruction|new instructions?)\s*:?\s*(?:\n|$)/g,
  },
  {
    id: 'system-override',
    words: ['mode', 'override', 'access', 'system', 'notice', 'alert', 'message', 'command'],
    literals: [],
    weight: 0.55,
    detail: 'system/developer mode claim',
    re: /\b(?:(?:system|developer|admin|god|debug|maintenance|root|sudo|privileged|unrestricted|diagnostic|superuser)\s+(?:mode|override|access)(?:\s*:\s*on\b|\s+(?:is\s+)?(?:now\s+)?(?:activated|enabled|engaged|active|granted)\b|\s+on(?=\s*(?:[.!,;:\n]|$)))|\byou\s+are\s+(?:now\s+)?(?:in|operating\s+in|running\s+in)\s+(?:a\s+|the\s+)?['"]?(?:system|developer|admin|god|debug|maintenance|root|sudo|unrestricted|privileged|diagnostic|superuser)\s+mode|(?:entering|enter|switch(?:ing)?\s+to|activate|activating|enable|enabling)\s+(?:a\s+|the\s+)?['"]?(?:maintenance|debug|developer|admin|god|system|unrestricted)\s+mode(?!['"]?\s+(?:on|in|for|of|under|via|from|through|settings|options)\b)|(?:developer|system)\s+(?:training\s+data\s+)?override|system\s+(?:notice|alert|override|message)\s*:)|\[\s*system\s*(?:message|note|notice|override)?\s*\]|\[\s*(?:admin(?:istrator)?|developer|root|sudo)\s+(?:override|mode|command|access|message)\s*\]/g,
  },
  {
    id: 'ignore-previous',
    words: [
      ...IGNORE_WORDS,
      // Every other alternative names what the agent was told (the TOLD nouns).
      'instruction',
      'instructions',
      'directive',
      'directives',
      'prompt',
      'prompts',
      'programming',
      'orders',
      'rules',
      'guidelines',
    ],
    literals: [],
    weight: 0.75,
    detail: '"ignore previous instructions" family',
    re: new RegExp(
      String.raw`\b${IGNORE}\s+(?:(?:all|any|the|your|my|every|of|these|those|each|and)\s+){0,3}${PREV}\s+(?:\w+\s+)?${ORDERS}|\b${IGNORE}\s+(?:all\s+|everything\s+)?(?:(?:that|what(?:ever)?)\s+)?(?:you(?:'ve|\s+have)?|i(?:'ve|\s+have)?)\s+(?:been\s+|was\s+|were\s+|had\s+been\s+)?(?:told|instructed|said|given|asked|programmed)|\b${IGNORE}\s+(?:all\s+|everything\s+)(?:(?:that\s+was\s+|i\s+)?(?:said|written|stated|mentioned)\s+)?(?:above|before|previously|so\s+far|until\s+now|earlier)\b|\b${IGNORE}\s+(?:all\s+)?(?:your|the|my)\s+${TOLD}\b|\b(?:do\s+not|don't|dont|stop|no\s+longer|quit|cease)\s+(?:to\s+)?(?:follow(?:ing)?|obey(?:ing)?|adher(?:e|ing)\s+to|comply(?:ing)?\s+with)\s+(?:(?:all|any)\s+)?(?:your\s+(?:${PREV}\s+)?|(?:the|these|those|my)\s+${PREV}\s+)${TOLD}\b|\b(?:your|the|all|my)\s+(?:(?:previous|prior|above|earlier|preceding|original|initial|old|system)\s+)?(?:instructions|directives|programming|prompt)(?:\s+(?:above|before|so\s+far))?\s+(?:(?:are|is|were|was|have|has)\s+(?:now\s+)?(?:been\s+)?(?:cancel+ed|void(?:ed)?|null(?:ified)?|revoked|overridden|overwritten|replaced|obsolete|invalid(?:ated)?|suspended|lifted|disabled|deactivated|wrong|fake|(?:just\s+)?a\s+test|no\s+longer\s+(?:valid|apply|applicable|in\s+effect))|no\s+longer\s+(?:apply|matter|count))\b`,
      'g',
    ),
  },
  {
    id: 'ignore-previous-i18n',
    words: [
      'ignoriere',
      'ignorieren',
      'ignorier',
      'vergiss',
      'vergessen',
      'missachte',
      'missachten',
      'ignorez',
      'ignore',
      'ignores',
      'oublie',
      'oubliez',
      'ignora',
      'ignorar',
      'olvida',
      'olvide',
      'olvidar',
      'omiso',
      'dimentica',
      'dimenticare',
      'esqueca',
      'esquece',
      'negeer',
      'vergeet',
      'zignoruj',
    ],
    literals: [],
    weight: 0.75,
    detail: '"ignore previous instructions" in another language',
    // Over the folded view: diacritics are gone (vorherigen, precedentes, instrucoes).
    re: /\b(?:ignorier(?:e|en|t)?|vergiss|vergessen\s+sie|missachte(?:n)?)\s+(?:(?:alle|die|deine|ihre|samtliche|deren|jegliche)\s+){0,2}(?:vorherigen|vorigen|bisherigen|obigen|fruheren|vorangegangenen|ursprunglichen|alten)\s+(?:anweisungen|befehle|instruktionen|regeln|anordnungen|vorgaben|aufgaben)|\b(?:ignore[zs]?|oublie[zs]?)\s+(?:(?:toutes|tous|les|tes|vos|des|ces)\s+){0,2}(?:instructions|consignes|regles|directives|ordres|indications)\s+(?:precedentes|anterieures|ci-dessus|initiales|d'origine|donnees)|\b(?:ignora(?:r)?|ignore|olvida(?:r)?|olvide|haz\s+caso\s+omiso\s+(?:a|de))\s+(?:(?:todas|todos|las|los|tus|sus|de|as|os|suas)\s+){0,2}(?:instrucciones|indicaciones|reglas|ordenes|directrices|instrucoes|regras|orientacoes)\s+(?:anteriores|previas|de\s+arriba|originales|acima)|\b(?:ignora|dimentica(?:re)?)\s+(?:(?:tutte|le|tue|gli|i)\s+){0,2}(?:istruzioni|regole|indicazioni|direttive)\s+(?:precedenti|di\s+prima|sopra|iniziali)|\b(?:esqueca|esquece)\s+(?:(?:todas|as|os|suas)\s+){0,2}(?:instrucoes|regras|orientacoes)\s+(?:anteriores|previas|acima)|\b(?:negeer|vergeet)\s+(?:(?:alle|de|je)\s+){0,2}(?:vorige|eerdere|voorgaande)\s+(?:instructies|opdrachten|regels)|\bzignoruj\s+(?:(?:wszystkie|poprzednie)\s+){1,2}(?:instrukcje|polecenia)/g,
  },
  {
    id: 'task-retraction',
    words: ['mind', 'nevermind', 'scratch', 'forget', 'actually', 'instead', 'cancel', 'stop'],
    literals: [],
    weight: 0.35,
    detail: "retracts or replaces the reader's task",
    re: /\bnever\s*mind\s+(?:the\s+above|(?:all\s+)?(?:that|this)|what\s+i\s+(?:said|asked|wrote)|(?:the|my|your)\s+(?:previous|prior|earlier|above|original|first)\s+\w+)|\bscratch\s+that\b|\bactually,?\s+(?:forget|ignore|never\s*mind|scratch|disregard|skip)\b|\binstead\s+of\s+(?:\w+ing)\b[^.?!\n]{0,60}?,?\s+(?:please\s+|just\s+|now\s+)?(?:tell|give|write|print|reveal|show|list|provide|say|output|what|answer|translate|describe|explain|sort|send)\b|\bactually\b[^.?!\n]{0,80}\binstead\b|\b(?:cancel|stop|abort|drop)\s+(?:the\s+|your\s+|my\s+)?(?:previous|prior|current|original|earlier|first)\s+(?:task|request|instructions?|assignment|job)\b/g,
  },
  {
    id: 'role-label',
    words: ['system', 'sys', 'admin', 'administrator', 'root', 'developer'],
    literals: [],
    weight: 0.35,
    detail: 'a line written as a system/admin message',
    re: /(?:^|[\n.!?]\s*)(?:system|sys|admin(?:istrator)?|root|developer)\s*(?:message|note|command|update)?\s*:\s*(?=[a-z"'])/g,
  },
  {
    id: 'ignore-the-data',
    words: IGNORE_WORDS,
    literals: [],
    weight: 0.5,
    detail: 'tells the reader to ignore the data it is reading',
    re: new RegExp(
      String.raw`\b${IGNORE}\s+(?:the|this|that|your|my)\s+(?:webpage|web page|document|resume|article|text|content|email|function|code|question|task|paper|table|page|user(?:'s)?(?:\s+request)?|above|prompt|instructions?|request|article|review|message|summary|file)\b`,
      'g',
    ),
  },
  {
    id: 'new-instructions',
    words: [
      'instruction',
      'instructions',
      'task',
      'directive',
      'directives',
      'orders',
      'goal',
      'objective',
      'purpose',
    ],
    literals: [],
    weight: 0.55,
    detail: 'announces new instructions',
    re: /\b(?:new|updated|revised|real|actual|true|secret|hidden|additional|urgent)\s+(?:instructions?|task|directives?|orders)\s*[:!-]|\byour\s+(?:new|real|actual|true)\s+(?:task|instructions?|goal|objective|purpose)\b/g,
  },
  {
    id: 'message-to-model',
    words: [...MODEL_WORDS, 'message', 'note', 'instruction', 'instructions'],
    literals: [],
    weight: 0.5,
    detail: 'addresses the model directly',
    re: new RegExp(
      String.raw`\bthis\s+is\s+an?\s+(?:important|urgent|critical)\s+(?:message|instruction|notice|request)\s+from\b|\b(?:message|note|instructions?)\s+(?:to|for)\s+(?:the\s+)?${MODEL}\b|\bto\s+you,\s+(?:the\s+)?${MODEL}\b|(?:^|[\n.!]\s*)(?:dear|hey|attention|hello|hi)\s+${MODEL}\b`,
      'g',
    ),
  },
  {
    id: 'before-task',
    words: ['before', 'following', 'after', 'first', 'instead'],
    literals: [],
    weight: 0.45,
    detail: "inserts a step before the user's task",
    re: /\bbefore\s+(?:you\s+)?(?:can\s+|could\s+)?(?:solve|complete|answer|continue|proceed|respond|reply|finish|do|start|summari[sz]e|perform)\b[^.\n]{0,40}\b(?:task|request|question|that|this)\b|\b(?:please\s+)?do\s+the\s+following\s+(?:first|instead|immediately|right away|now)\b|\bafter\s+you\s+do\s+that\b|\b(?:first|instead)\s*,?\s+(?:you\s+)?(?:must|should|need\s+to|have\s+to)\s+(?:send|email|transfer|forward|call|invoke|visit|open|read|post|upload|delete|change|update|invite|create)\b/g,
  },
  {
    id: 'conceal-from-user',
    words: ['user', 'human', 'operator', 'anyone', 'them', 'implementation'],
    literals: [],
    weight: 0.55,
    detail: 'asks to hide the action from the user',
    re: /\b(?:do\s+not|don't|dont|never|without)\s+(?:tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|reveal|revealing|show|showing|let)\s+(?:this\s+|it\s+|that\s+)?(?:to\s+)?(?:the\s+|your\s+)?(?:user|human|operator|anyone|them)\b|\b(?:mere|just\s+an?)\s+implementation\s+detail\b|\bthe\s+user\s+(?:must|should)\s+not\s+(?:know|see|find out)\b/g,
  },
  {
    id: 'identity-claim',
    words: [
      'god',
      'developer',
      'creator',
      'admin',
      'administrator',
      'owner',
      'system',
      'anthropic',
      'openai',
      'sysadmin',
      'operator',
      'supervisor',
      'auditor',
      'officer',
      'access',
      'privileges',
      'clearance',
      'permission',
      'permissions',
      'authorized',
      'authorised',
      'cleared',
      'permitted',
    ],
    literals: [],
    weight: 0.4,
    detail: 'claims authority over the model',
    re: /\bas\s+(?:your|the|an?|this\s+system's)\s+(?:developer|creator|admin(?:istrator)?|system\s+admin(?:istrator)?|sysadmin|owner|operator|supervisor|security\s+(?:officer|auditor|team)|auditor)\b|\bi\s+(?:have|hold|got|was\s+given)\s+(?:(?:full|admin(?:istrator)?|root|system|developer|elevated|special|top[- ]secret|security|privileged)\s+)+(?:access|privileges|rights|clearance|permissions?)\b|\bi(?:'m|\s+am)\s+(?:an?\s+|the\s+)?(?:authori[sz]ed|cleared|permitted)\s+(?:to|user|personnel|by)\b|\bthis\s+is\s+(?:an?\s+|the\s+)?(?:system|admin|developer|security|maintenance)\s+(?:test|check|override|command|request|audit)\b|\bi(?:'m|\s+am)\s+(?:god|your\s+(?:developer|creator|admin(?:istrator)?|owner|master)|the\s+system\s+admin(?:istrator)?|the\s+(?:developer|admin(?:istrator)?|system|owner)|a\s+developer\s+(?:at|from|of|running|with)|(?:an?\s+)?(?:ai\s+)?(?:developed|made|created)\s+by\s+(?:anthropic|openai|google|meta))\b|\bas\s+an\s+ai\s+(?:developed|made|created)\s+by\b/g,
  },
  {
    id: 'role-play',
    words: [
      'now',
      'longer',
      'pretend',
      'act',
      'behave',
      'respond',
      'anything',
      'mode',
      'jailbreak',
      'jailbroken',
      'jailbreaking',
      'jailbroke',
      'immerse',
      'roleplay',
      'role',
      'play',
      'without',
    ],
    literals: [],
    weight: 0.4,
    detail: 'role-play or identity override',
    re: /\byou\s+are\s+(?:now|no\s+longer)\s+(?:a|an|the|my|in|free|called|known|going|dan|operating|acting|unrestricted|jailbroken)\b|\bfrom\s+now\s+on,?\s+(?:you|your|act|respond|answer|only)\b|\bpretend\s+(?:to\s+be|you\s+are|that\s+you)\b|\b(?:act|behave|respond)\s+as\s+(?:if\s+you\s+(?:are|were)|though\s+you\s+(?:are|were))\b|\bdo\s+anything\s+now\b|\b(?:dan|developer|jailbreak|god)\s+mode\b|\bjailbr(?:ea|o)k(?:en|ing)?\b|\bimmerse\s+yourself\s+(?:in|into)\s+the\s+role\b|\b(?:answer|respond|reply|act|operate)\s+without\s+(?:any\s+)?(?:restrictions|limitations|filters|censorship|rules|guidelines)\b|\b(?:act|behave)\s+as\s+(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue)\b|\byou\s+(?:will|must)\s+(?:now\s+)?(?:roleplay|role-play|play\s+the\s+role)\b/g,
  },
  {
    id: 'reveal-secrets',
    words: [
      'prompt',
      'instructions',
      'password',
      'passwords',
      'passphrase',
      'passcode',
      'key',
      'credentials',
      'token',
      'secret',
      'confidential',
      'pin',
    ],
    literals: [],
    weight: 0.45,
    detail: 'asks to reveal prompt or secrets',
    re: /\b(?:reveal|print|show|output|repeat|leak|disclose|confirm|tell\s+me|give\s+me|share|send|provide|display|divulge|expose|spell(?:\s+out)?|recite|write\s+down|read\s+out|hand\s+over|i\s+(?:need|require|want))\s+(?:me\s+|us\s+)?(?:your|the|this|our|that|its|any)\s+(?:(?:admin|system|root|master|current|secret|account|database|login|wifi|user's)\s+)?(?:system\s+prompt|initial\s+prompt|hidden\s+instructions|instructions|passwords?|passphrase|passcode|pin(?:\s+code)?|secret(?:\s+(?:key|code|word|phrase|string|token))?|access\s+code|confidential\s+(?:string|code|information|data|key)|api\s+keys?|credentials|private\s+key|access\s+token)\b|\b(?:what\s+is|what's|what\s+are)\s+(?:your|the|our|this)\s+(?:(?:admin|system|root|master|secret|account|database|login)\s+)?(?:password|passphrase|passcode|secret\s+(?:key|code|word|phrase|string)|api\s+key|system\s+prompt|access\s+code|confidential\s+(?:string|code))\b/g,
  },
  {
    id: 'tool-directive',
    words: ['tool', 'function'],
    literals: [],
    weight: 0.3,
    detail: 'directs the agent to use a tool',
    re: /\b(?:call|invoke|use|run|execute|trigger)\s+(?:the\s+)?[`'"]?[a-z][a-z0-9_.-]{2,60}[`'"]?\s+(?:tool|function)\s+(?:with|to|and|on|passing)\b/g,
  },
  {
    id: 'exfil-directive',
    words: ['send', 'email', 'forward', 'post', 'upload', 'transfer', 'exfiltrate', 'leak'],
    literals: [],
    weight: 0.35,
    detail: 'tells the agent to send data to an outside address',
    re: /\b(?:send|email|forward|post|upload|transfer|exfiltrate|leak)\b[^.\n]{0,60}?\b(?:to|at)\s+(?:https?:\/\/|www\.|[a-z0-9._%+-]{1,64}@[a-z0-9-]{1,63}\.|[a-z]{2}\d{2}[a-z0-9]{10,30}\b)/g,
  },
  {
    id: 'sensitive-file',
    words: [
      'ssh',
      'id_rsa',
      'id_ed25519',
      'credentials',
      'passwd',
      'shadow',
      'mcp',
      'cursor',
      'env',
      'npmrc',
      'netrc',
      'keychain',
    ],
    literals: [],
    weight: 0.45,
    detail: 'points the agent at credential files',
    re: /\b(?:read|open|cat|access|get|fetch|include|attach|load|send)\b[^\n]{0,60}(?:~\/\.ssh|id_rsa|id_ed25519|\.aws\/credentials|\/etc\/(?:passwd|shadow)|mcp\.json|\.cursor\/|\.env\b|\.npmrc|\.netrc|keychain)/g,
  },
  {
    id: 'urgent-imperative',
    words: [
      'important',
      'urgent',
      'attention',
      'warning',
      'notice',
      'must',
      'need',
      'have',
      'sure',
      'crucial',
      'critical',
      'essential',
      'imperative',
    ],
    literals: [],
    weight: 0.2,
    detail: 'urgent imperative aimed at the reader',
    re: /\b(?:important|urgent|attention|warning|notice)(?:!{2,}|\s*:\s*(?:you|the\s+assistant|assistant|ai)\b)|\byou\s+(?:must|need\s+to|have\s+to)\b|\bmake\s+sure\s+(?:you|to)\b|\bit\s+is\s+(?:very\s+|extremely\s+|absolutely\s+)?(?:important|crucial|critical|essential|imperative)\s+that\s+you\b/g,
  },
  {
    id: 'instead-say',
    words: ['instead', 'rather', 'only', 'just', 'state', 'declare', 'say', 'pwned', 'hacked', 'owned'],
    literals: [],
    weight: 0.3,
    detail: 'replaces the expected answer',
    re: /\b(?:instead|rather),?\s+(?:you\s+(?:must|should|will)\s+)?(?:just\s+|only\s+)?(?:say|respond|reply|output|print|state|write|answer|declare)\b|\b(?:reply|respond|answer)\s+(?:only|just)\s+with\b|\b(?:i\s+have\s+been|you\s+have\s+been|been)\s+(?:pwned|hacked|owned)\b|\b(?:only|just)\s+(?:say|respond\s+with|reply\s+with|output|print)\s*[:"'“]|\b(?:and|then)\s+(?:state|declare|say)\s*:/g,
  },
];

/** FNV-1a of a word, as {@link gate} computes it while scanning. */
function wordHash(w: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Word hash → bit mask of the rules it gates (a hash collision only runs a rule for nothing). */
const WORD_GATES = new Map<number, number>();
RULES.forEach((r, i) => {
  for (const w of r.words) WORD_GATES.set(wordHash(w), (WORD_GATES.get(wordHash(w)) ?? 0) | (1 << i));
});
if (RULES.length > 31) throw new Error('injection: more rules than gate bits');

/**
 * Which rules can match `folded`: one pass over the characters hashing each word (no allocation), plus a
 * substring test per literal. Running 16 regular expressions over every text was most of the
 * sanitisers' cost; most texts wake a few rules.
 */
function gate(folded: string): number {
  let mask = 0;
  let h = 0x811c9dc5;
  let inWord = false;
  for (let i = 0; i <= folded.length; i++) {
    const c = i < folded.length ? folded.charCodeAt(i) : 0;
    if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f) {
      h = Math.imul(h ^ c, 0x01000193);
      inWord = true;
    } else if (inWord) {
      mask |= WORD_GATES.get(h >>> 0) ?? 0;
      h = 0x811c9dc5;
      inWord = false;
    }
  }
  RULES.forEach((r, i) => {
    if (r.literals.some((l) => folded.includes(l))) mask |= 1 << i;
  });
  return mask;
}

/** Words whose look-alike spelling (caught only by folding) is itself a signal (T23). */
const HOMOGLYPH_WORDS =
  /\b(?:ignore|disregard|forget|instructions?|system|important|information|assistant|prompt|password|jailbreak|override|previous|admin|secret|execute|send|token)\b/g;

/**
 * A long horizontal whitespace run, or many blank lines: text pushed out of view (T24). The lookbehind
 * makes a match start only where a run starts, and blank lines start at a line feed (otherwise every
 * space of a long run is tried: quadratic on space-padded tables). Padding before a table's column
 * separator `|` is layout, not hiding; text after the run is what is hidden.
 */
const PADDING =
  /(?<![ \t\u00a0\u2000-\u200a\u3000])[ \t\u00a0\u2000-\u200a\u3000]{120,}(?=[^\s|])|\n(?:[ \t]*\r?\n){39,}(?=\S)/g;

/** A letter outside ASCII. */
const FOREIGN_LETTER = /(?!\p{ASCII})\p{L}/u;

/** Scorer output: the score (0..1, always computed) and the findings (empty below the threshold). */
export interface InjectionResult {
  readonly score: number;
  readonly findings: Finding[];
}

/**
 * Scores `text` for instruction-like content. `threshold` decides whether the signals become findings;
 * pass a pre-computed folded view to share it with other detectors.
 */
export function detectInjection(
  text: string,
  threshold: number,
  view: View = foldedView(text),
): InjectionResult {
  const signals: Finding[] = [];
  let keep = 1;
  // Matches are kept in view offsets and mapped back only when the score reaches the threshold: most
  // texts have a weak signal or two, and mapping a non-ASCII text's offsets costs more than matching.
  const raw: Array<{ rule: Rule; start: number; end: number }> = [];
  const mask = gate(view.text);
  for (let i = 0; i < RULES.length; i++) {
    const rule = RULES[i];
    if (rule === undefined || (mask & (1 << i)) === 0) continue;
    let hit = false;
    for (const m of view.text.matchAll(rule.re)) {
      raw.push({ rule, start: m.index, end: m.index + m[0].length });
      hit = true;
    }
    if (hit) keep *= 1 - rule.weight;
  }
  // Keywords are checked word by word (a longer match may hold an ordinary accented word), and only
  // when the text has a look-alike or compatibility character at all.
  let homoglyph: [number, number] | undefined;
  if (!view.identity && hasLookalike(text)) {
    for (const m of view.text.matchAll(HOMOGLYPH_WORDS)) {
      const [start, end] = toOriginal(view, m.index, m.index + m[0].length);
      if (FOREIGN_LETTER.test(text.slice(start, end))) {
        homoglyph = [start, end];
        break;
      }
    }
  }
  if (homoglyph !== undefined) {
    keep *= 1 - 0.4;
    signals.push({
      type: 'injection',
      rule: 'homoglyph',
      start: homoglyph[0],
      end: homoglyph[1],
      detail: 'keyword spelled with look-alike characters',
      weight: 0.4,
    });
  }
  PADDING.lastIndex = 0;
  let padded = false;
  for (const m of text.matchAll(PADDING)) {
    if (!padded) keep *= 1 - 0.5;
    padded = true;
    signals.push({
      type: 'injection',
      rule: 'whitespace-padding',
      start: m.index,
      end: m.index + m[0].length,
      detail: `${m[0].length} whitespace characters in a row`,
      weight: 0.5,
    });
  }
  const score = Math.round((1 - keep) * 1000) / 1000;
  if (score < threshold) return { score, findings: [] };
  for (const r of raw) {
    const [start, end] = toOriginal(view, r.start, r.end);
    signals.push({
      type: 'injection',
      rule: r.rule.id,
      start,
      end,
      detail: r.rule.detail,
      weight: r.rule.weight,
    });
  }
  signals.sort((x, y) => x.start - y.start);
  return { score, findings: signals };
}
