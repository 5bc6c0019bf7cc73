import { describe, expect, test } from 'bun:test';
import { ConflictError } from '../../lib/errors.ts';
import { RoleMachine, type RoleState, TRANSITIONS } from './role-machine.ts';

const ALL = Object.keys(TRANSITIONS) as RoleState[];

describe('RoleMachine', () => {
  test('starts from the role the data dir records', () => {
    expect(RoleMachine.fromRole(null).state).toBe('none');
    expect(RoleMachine.fromRole('manager').state).toBe('manager');
    expect(RoleMachine.fromRole('worker').state).toBe('worker');
  });

  test('a worker promoted, refused once, then promoted and restarted', () => {
    const m = RoleMachine.fromRole('worker');
    m.go('promoting');
    m.go('worker'); // no manager renewed the certificate as a manager
    m.go('promoting');
    m.go('restarting');
    expect(m.state).toBe('restarting');
  });

  test('a manager demoted becomes a worker, which can be promoted again', () => {
    const m = RoleMachine.fromRole('manager');
    m.go('demoting');
    m.go('worker');
    expect(m.can('promoting')).toBe(true);
  });

  test('init and join start only from no cluster; a failed join goes back', () => {
    const m = RoleMachine.fromRole(null);
    m.go('joining');
    expect(m.can('manager')).toBe(false); // no init while a join is under way
    m.go('none');
    m.go('manager');
    expect(m.state).toBe('manager');
  });

  test('an illegal move is refused with a ConflictError naming both states, and changes nothing', () => {
    const m = RoleMachine.fromRole('manager');
    expect(() => m.go('promoting')).toThrow(ConflictError);
    expect(() => m.go('promoting')).toThrow('this node cannot become promoting while it is manager');
    expect(m.state).toBe('manager');
    m.go('demoting');
    expect(() => m.go('demoting')).toThrow(ConflictError); // a second demotion cannot interleave
    expect(m.state).toBe('demoting');
  });

  test('restarting and leaving are final', () => {
    for (const end of ['restarting', 'leaving'] as const) {
      const m = new RoleMachine(end);
      for (const to of ALL) expect(m.can(to)).toBe(false);
    }
  });

  test('every state can be reached from a start, and every move names its target state', () => {
    const reached = new Set<RoleState>(['none', 'manager', 'worker']);
    for (let grew = true; grew;) {
      grew = false;
      for (const from of [...reached]) {
        for (const to of Object.keys(TRANSITIONS[from]) as RoleState[]) {
          expect(ALL).toContain(to);
          expect(TRANSITIONS[from][to]).toBeTruthy();
          if (reached.has(to)) continue;
          reached.add(to);
          grew = true;
        }
      }
    }
    expect([...reached].sort()).toEqual([...ALL].sort());
  });
});
