/**
 * Typed events, declared once for every class of the library. Each class names its events
 * in an event map (event name -> the listener's arguments, as a labelled tuple) and states
 * it with `declare readonly [eventMap]: Events<TheMap>`; `on`, `once`, `off`, `emit`, ... then
 * take only those names, with listeners typed by them.
 *
 * Types only: the class every emitter extends is Node's EventEmitter itself, so emitting
 * costs what it costs on any EventEmitter.
 *
 * Subclasses stay sound: a subclass may add events, or pass listeners more arguments or
 * narrower ones, since a listener written for the base class still gets what it expects;
 * anything else is a compile error where the subclass declares its map.
 *
 * The `[eventMap]` fields are marked @internal only to keep them out of the API reference:
 * the declarations need them, so the build must not use stripInternal.
 * @packageDocumentation
 */
import { EventEmitter } from 'node:events';

/**
 * The key of the (type-only) event map of an emitter class; no such property exists at
 * run time. @internal
 */
export declare const eventMap: unique symbol;

/** Events every emitter has: Node's own, about listeners being added and removed. */
export interface EmitterEvents {
  /** Emitted before a listener is added. */
  newListener: [event: string | symbol, listener: (...args: any[]) => void];
  /** Emitted after a listener is removed. */
  removeListener: [event: string | symbol, listener: (...args: any[]) => void];
}

/**
 * How a class states its event map `E` (see the module's comment). The listener-taking
 * form makes a subclass's map checked as listeners need it: each event's arguments may
 * only grow or narrow.
 */
export type Events<E> = { readonly [K in keyof E]: (listener: (...args: Extract<E[K], readonly unknown[]>) => void) => void };

type MapOf<T> = T extends { readonly [eventMap]: infer M } ? M : never;

/** The event names of emitter `T`. */
export type EventName<T> = keyof MapOf<T> & (string | symbol);

/** The arguments listeners of event `K` of emitter `T` receive. */
export type EventArgs<T, K extends EventName<T>> = MapOf<T>[K] extends (listener: (...args: infer A) => void) => void ? A : never;

/**
 * A listener for event `K` of emitter `T`. It may declare more parameters than the event
 * has, if they accept undefined (`new Promise((resolve) => sock.once('close', resolve))`).
 */
export type Listener<T, K extends EventName<T>> = (...args: [...EventArgs<T, K>, ...undefined[]]) => void;

type Typed = 'on' | 'once' | 'off' | 'addListener' | 'removeListener' | 'prependListener' | 'prependOnceListener' | 'emit' | 'listeners' | 'rawListeners';

/**
 * Node's EventEmitter with its event methods typed by the event map of the class. They
 * take the emitter as `this: T` rather than the polymorphic `this`, so that they are one
 * signature on every class, and a union of emitters (`UdpSocket | RawSocket`) can be
 * called with the events its members share.
 */
export interface TypedEmitter extends Omit<EventEmitter, Typed> {
  /** @internal Type only: the class's event map. */
  readonly [eventMap]: Events<EmitterEvents>;
  on<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  once<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  off<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  addListener<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  removeListener<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  prependListener<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  prependOnceListener<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, listener: Listener<T, K>): T;
  emit<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K, ...args: EventArgs<T, K>): boolean;
  listeners<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K): Array<Listener<T, K>>;
  rawListeners<T extends TypedEmitter, K extends EventName<T>>(this: T, event: K): Array<Listener<T, K>>;
}

/** Node's EventEmitter class (the very same at run time), typed as a TypedEmitter. */
export const TypedEmitter: Omit<typeof EventEmitter, 'prototype'> & { new (): TypedEmitter; readonly prototype: TypedEmitter } = EventEmitter as never;

/**
 * Raises an error a listener threw the way Node raises any uncaught exception (the
 * process's 'uncaughtException', or a crash without one), but on the next tick, once the
 * delivery that called the listener has finished: the datagrams and events after the one
 * whose listener threw are still delivered. Each error is raised on its own.
 * @internal
 */
export function listenerThrew(err: unknown): void {
  process.nextTick(rethrow, err);
}

function rethrow(err: unknown): never {
  throw err;
}

/**
 * Emits `event` to each listener on its own: one that throws (the error goes to
 * listenerThrew) costs neither the listeners after it nor the caller. For events of
 * infrastructure several owners listen to (an interface watcher shared by sockets), where
 * one owner's bug must not silence another. Not for 'error', whose missing listener must
 * throw. @internal
 */
export function emitEach(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  // rawListeners: a once() wrapper removes itself when called, as emit() does.
  const listeners = emitter.rawListeners(event) as Array<(...a: unknown[]) => void>;
  for (const listener of listeners) {
    try {
      listener.apply(emitter, args);
    } catch (err) {
      listenerThrew(err);
    }
  }
}
