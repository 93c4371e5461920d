import type { NewConfigChange } from '../models/box-config';
import type { BoxCallOutcome } from './box-answer';

/** A call that reached no success: what the box answered, or why there was no answer. */
export type FailedCall = Exclude<BoxCallOutcome, { kind: 'applied' } | { kind: 'invalid_target' }>;

/**
 * How the audit trail records a failed call, the same for every call: the outcome, the box's status
 * and answer (only its documented error object: a bad answer's content is never kept, its message
 * says its type and size), and the error code and message.
 */
export function failureRecord(outcome: FailedCall): Pick<NewConfigChange, 'outcome' | 'httpStatus' | 'response' | 'errorCode' | 'errorMessage'> {
  switch (outcome.kind) {
    case 'rejected':
      return { outcome: 'rejected', httpStatus: outcome.httpStatus, response: outcome.body, errorCode: outcome.code, errorMessage: outcome.message };
    case 'unreachable':
      return { outcome: 'unreachable', httpStatus: null, response: null, errorCode: outcome.reason.toUpperCase(), errorMessage: outcome.message };
    case 'timed_out':
      return { outcome: 'timed_out', httpStatus: null, response: null, errorCode: 'TIMED_OUT', errorMessage: `No complete answer within ${outcome.timeoutMs} ms.` };
    case 'bad_answer':
      return { outcome: 'bad_answer', httpStatus: outcome.httpStatus, response: null, errorCode: outcome.reason.toUpperCase(), errorMessage: outcome.message };
    case 'address_refused':
      return { outcome: 'refused', httpStatus: null, response: null, errorCode: `ADDRESS_${outcome.refusal.toUpperCase()}`, errorMessage: outcome.message };
  }
}
