/** Options of encode() that send the work to BullMQ workers over Redis (see src/distributed). */
export interface DistributedEncodeOptions {
  /**
   * redis://host:port of a Redis that `roi-encode worker` processes serve. With it, analysis, chunk
   * encodes and assembly run as jobs on those workers; input and output must be on a filesystem
   * every worker sees at the same absolute path.
   */
  redis?: string;
  /** Target chunk length in seconds (default 30); chunks end at scene cuts where one is near. */
  chunkSeconds?: number;
  /**
   * The secret jobs are signed with (default: ROI_ENCODER_SECRET, else ~/.config/roi-encoder/secret,
   * made on first use); workers must have the same. See docs/security.md.
   */
  secret?: string;
  /** A file holding that secret instead (as `--secret-file`). */
  secretFile?: string;
  /** One-line notices while waiting, e.g. "waiting for a worker on redis://…". */
  onNotice?: (message: string) => void;
}
