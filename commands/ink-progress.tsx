/**
 * The live progress view on a terminal, drawn with ink: a ProgressReporter of progress.ts,
 * which imports this module only on a terminal (and hands it the ETA wording).
 */
import React from "react";
import { render, Text, Box, type Instance } from "ink";

type Eta = (startedMs: number, done: number, total: number) => string;

interface ViewState { label: string; done: number; total: number; status: string; started: number }

function ProgressView({ state, eta }: { state: ViewState; eta: Eta }): React.ReactElement {
  const width = 30;
  const frac = state.total > 0 ? Math.min(1, state.done / state.total) : 0;
  const filled = Math.round(frac * width);
  return (
    <Box>
      <Text color="cyan">{state.label} </Text>
      <Text>[{"#".repeat(filled)}{"-".repeat(width - filled)}] {state.done}/{state.total} </Text>
      <Text color="gray">ETA {eta(state.started, state.done, state.total)} {state.status}</Text>
    </Box>
  );
}

export class InkProgress {
  private instance: Instance | null = null;
  private state: ViewState = { label: "", done: 0, total: 0, status: "", started: performance.now() };

  constructor(private readonly eta: Eta) {}

  start(label: string, total: number): void {
    this.state = { label, done: 0, total, status: "", started: performance.now() };
    if (this.instance === null) {
      this.instance = render(<ProgressView state={this.state} eta={this.eta} />, { stdout: process.stderr, patchConsole: false, exitOnCtrlC: true });
    } else {
      this.instance.rerender(<ProgressView state={this.state} eta={this.eta} />);
    }
  }

  update(done: number, status = ""): void {
    this.state = { ...this.state, done, status };
    this.instance?.rerender(<ProgressView state={this.state} eta={this.eta} />);
  }

  log(line: string): void {
    this.instance?.clear();
    process.stderr.write(`${line}\n`);
    this.instance?.rerender(<ProgressView state={this.state} eta={this.eta} />);
  }

  finish(): void {
    this.instance?.rerender(<ProgressView state={this.state} eta={this.eta} />);
    this.instance?.unmount();
    this.instance = null;
  }
}

