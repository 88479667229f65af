/**
 * Readiness as a small list of named probes, used by the panel (GET /readyz) and the agent
 * (its health in the `agent metrics` reply). A part that must be up for the process to do its
 * work adds one entry: `readiness.add('database', () => …)`. A probe that throws, returns false
 * or does not answer within the timeout counts as failed.
 */
export type ProbeCheck = () => boolean | Promise<boolean>;

export interface ProbeResult {
  name: string;
  ok: boolean;
}

export interface ReadinessReport {
  ready: boolean;
  checks: ProbeResult[];
}

export class Readiness {
  private readonly probes = new Map<string, ProbeCheck>();

  constructor(private readonly timeoutMs = 2_000) {}

  /** Adds a named probe (names are fixed words, e.g. 'database': they become metric labels). */
  add(name: string, check: ProbeCheck): this {
    if (!/^[a-z][a-z0-9 -]{0,40}$/.test(name)) throw new Error(`bad probe name ${JSON.stringify(name)}`);
    if (this.probes.has(name)) throw new Error(`probe ${name} added twice`);
    this.probes.set(name, check);
    return this;
  }

  names(): string[] {
    return [...this.probes.keys()];
  }

  /** Runs every probe at once; ready when all pass. */
  async run(): Promise<ReadinessReport> {
    const checks = await Promise.all(
      [...this.probes].map(async ([name, check]): Promise<ProbeResult> => ({
        name,
        ok: await this.one(check),
      })),
    );
    return { ready: checks.every((c) => c.ok), checks };
  }

  private async one(check: ProbeCheck): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), this.timeoutMs);
      });
      return (await Promise.race([Promise.resolve().then(check), timeout])) === true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }
}
