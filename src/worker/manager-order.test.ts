import { describe, expect, test } from 'bun:test';
import { ManagerOrder, STICK } from './manager-order.ts';

const [A, B, C] = ['10.0.0.1:2377', '10.0.0.2:2377', '10.0.0.3:2377'];

describe('ManagerOrder', () => {
  test('with nothing to go on, the list turns a step per attempt', () => {
    const o = new ManagerOrder();
    expect(o.next([A, B, C])).toEqual([A, B, C]);
    expect(o.next([A, B, C])).toEqual([B, C, A]);
    expect(o.next([A, B, C])).toEqual([C, A, B]);
  });

  test("a refusal's named leader is asked first, then the manager that refused, then the rest", () => {
    const o = new ManagerOrder();
    o.next([A, B, C]);
    o.answered(B);
    expect(o.next([A, B, C], { refused: { leader: C } })).toEqual([C, B, A]);
    // A leader the worker did not know of is asked too.
    o.answered(B);
    expect(o.next([A, B], { refused: { leader: C } })).toEqual([C, B, A]);
  });

  test('after the leader dies, the worker keeps to the follower that answered: no connection to the other one', () => {
    const o = new ManagerOrder();
    o.next([A, B, C]);
    o.answered(A); // registered with A, the leader
    // A dies: the session breaks; A goes to the end of the turning list.
    const first = o.next([A, B, C], { broke: true });
    expect(first.at(-1)).toBe(A);
    const [follower, other] = [first[0]!, first[1]!];
    o.answered(follower);
    // The follower refuses, naming A until its election timeout: A (a failed dial) then that follower, never the other.
    for (let i = 0; i < 5; i++) {
      expect(o.next([A, B, C], { refused: { leader: A } }).slice(0, 2)).toEqual([A, follower]);
      o.answered(follower);
    }
    // An election under way: no leader named; the same follower is asked again.
    expect(o.next([A, B, C], { refused: {} })[0]).toBe(follower);
    o.answered(follower);
    // The other survivor won: the follower names it.
    expect(o.next([A, B, C], { refused: { leader: other } }).slice(0, 2)).toEqual([other, follower]);
  });

  test(`a manager that names no leader is asked ${STICK} times in a row, then the list turns`, () => {
    const o = new ManagerOrder();
    expect(o.next([B, C])[0]).toBe(B);
    o.answered(B);
    const asked = [B];
    for (let i = 0; i < STICK; i++) {
      const order = o.next([B, C], { refused: {} });
      asked.push(order[0]!);
      o.answered(order[0]!);
    }
    expect(asked).toEqual([...Array(STICK).fill(B), C]);
  });

  test('no manager answered: the list turns', () => {
    const o = new ManagerOrder();
    o.next([A, B]);
    o.answered(null);
    expect(o.next([A, B])).toEqual([B, A]);
  });

  test('no managers known: an empty order', () => {
    expect(new ManagerOrder().next([])).toEqual([]);
  });
});
