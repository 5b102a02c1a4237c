/** The pre-processing flags every command that reads a dataset shares. */
import type { Command } from 'commander';
import { type Preprocess, parseNumberList } from '../data/preprocess.js';
import { badInput } from '../errors.js';

export interface DataFlags {
  mean?: string;
  std?: string;
  scale?: string;
  bgr?: boolean;
  layout?: string;
}

export function addDataOptions(cmd: Command): Command {
  return cmd
    .option('--mean <values>', 'per-channel mean subtracted from pixels/255, e.g. 0.485,0.456,0.406 (default none)')
    .option('--std <values>', 'per-channel std divided by after the mean, e.g. 0.229,0.224,0.225 (default none)')
    .option('--scale <x>', 'pixel scale before mean/std (default 1/255)')
    .option('--bgr', 'feed image channels as BGR (default RGB)')
    .option('--layout <layout>', 'input layout of images: nchw (default) or nhwc');
}

export function preprocessFrom(flags: DataFlags): Preprocess {
  if (flags.layout !== undefined && flags.layout !== 'nchw' && flags.layout !== 'nhwc')
    throw badInput(`--layout ${flags.layout}: expected nchw or nhwc`);
  const scale = parseNumberList('--scale', flags.scale);
  if (scale && scale.length !== 1) throw badInput(`--scale ${flags.scale}: expected one number`);
  return {
    mean: parseNumberList('--mean', flags.mean),
    std: parseNumberList('--std', flags.std),
    scale: scale?.[0],
    channels: flags.bgr ? 'bgr' : 'rgb',
    layout: flags.layout as 'nchw' | 'nhwc' | undefined,
  };
}
