/**
 * What the words of a Query or Parse tell the host, from one scan of its bytes (words.ts): whether
 * it may hold COPY or STDOUT, whether it brings the statement to some plugin's statement hook
 * (Plugin.statementWords), whether it marks its unit (Plugin.unitWords).
 */
import { decodeParse, decodeQuery } from '../proxy/wire/frontend-messages.js';
import { Frontend } from '../proxy/wire/codes.js';
import { WordGroups } from './words.js';
import type { Plugin } from './hooks.js';

const COPY = 1 << 0;
const STDOUT = 1 << 1;

export class MessageWords {
  /** COPY, STDOUT, then one group per plugin with statementWords or unitWords. */
  private readonly words: WordGroups;
  /** The groups of Plugin.unitWords, and per plugin its bit. */
  private readonly unitWords: number;
  private readonly unitPlugins: readonly { readonly plugin: Plugin; readonly bit: number }[];
  /** The groups of Plugin.statementWords, and per plugin its bit. */
  private readonly statementWords: number;
  private readonly statementBits = new Map<Plugin, number>();
  private lastText: string | null = null;
  private lastTextFound = 0;

  /** `plugins` in their declared order. */
  constructor(plugins: readonly Plugin[], private readonly log: (msg: string) => void) {
    const groups: (readonly string[])[] = [['copy'], ['stdout']];
    const group = (words: readonly string[]): number => 1 << (groups.push(words) - 1);
    for (const p of plugins) if (p.statement && p.statementWords) this.statementBits.set(p, group(p.statementWords));
    this.statementWords = [...this.statementBits.values()].reduce((a, b) => a | b, 0);
    this.unitPlugins = plugins.filter((p) => p.unitWords).map((plugin) => ({ plugin, bit: group(plugin.unitWords!) }));
    this.unitWords = this.unitPlugins.reduce((a, u) => a | u.bit, 0);
    this.words = new WordGroups(groups);
  }

  /**
   * Whether the bytes hold the word COPY in any case. COPY is a keyword, and no escape, quoting or
   * comment can spell a keyword: a text the server reads as COPY holds these four ASCII letters
   * (in every client encoding the server accepts, ASCII is ASCII), so nothing that can copy is missed.
   */
  holdsCopy(raw: Buffer): boolean {
    return (this.words.inMessage(raw) & COPY) !== 0;
  }

  holdsStdout(raw: Buffer): boolean {
    return (this.words.inMessage(raw) & STDOUT) !== 0;
  }

  /** Whether a Query or Parse holds a word that brings it to some plugin's statement hook. */
  bringStatement(raw: Buffer): boolean {
    return this.statementWords !== 0 && (this.words.inMessage(raw) & this.statementWords) !== 0;
  }

  /** Whether a statement's text holds a word of this plugin's statementWords. */
  bringsTo(plugin: Plugin, text: string): boolean {
    const bit = this.statementBits.get(plugin);
    if (bit === undefined) return false;
    if (text !== this.lastText) {
      this.lastTextFound = this.words.inText(text);
      this.lastText = text;
    }
    return (this.lastTextFound & bit) !== 0;
  }

  /**
   * Whether a Query or Parse holds a word some plugin watches units for, and that plugin's
   * marksUnit (if it has one) says yes; a marksUnit that throws is logged and marks the unit.
   */
  marksUnit(raw: Buffer): boolean {
    const found = this.unitWords === 0 ? 0 : this.words.inMessage(raw) & this.unitWords;
    if (found === 0) return false;
    let text: string | null = null;
    for (const { plugin, bit } of this.unitPlugins) {
      if ((found & bit) === 0) continue;
      if (!plugin.marksUnit) return true;
      text ??= raw[0] === Frontend.Parse ? decodeParse(raw).text : decodeQuery(raw);
      try {
        if (plugin.marksUnit(text)) return true;
      } catch (err) {
        this.log(`plugin ${plugin.name}: marksUnit failed: ${err instanceof Error ? err.message : String(err)}`);
        return true;
      }
    }
    return false;
  }
}
