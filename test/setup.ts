// Jest runs each test file in its own vm realm, whose `Symbol` lacks the asyncDispose that
// Node 20 adds to its main realm. Borrow Node's own symbol (found on Readable.prototype)
// so `await using` in tests and `[Symbol.asyncDispose]` in lib/ name the same key as in
// a real process.
import { Readable } from 'node:stream';

if (Symbol.asyncDispose === undefined) {
  const nodeSymbol = Object.getOwnPropertySymbols(Readable.prototype).find((s) => s.description === 'nodejs.asyncDispose');
  if (nodeSymbol !== undefined) Object.defineProperty(Symbol, 'asyncDispose', { value: nodeSymbol });
}
