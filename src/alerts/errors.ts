/** What a client got wrong in an alert, rule or channel request; GraphQL answers it with these extensions. */
export type AlertErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'ALERT_NOT_OPEN' | 'WEBHOOK_URL_REFUSED';

/**
 * A request about alerts that cannot be carried out as asked: the message says what to change,
 * `argument` names the argument at fault (`input.forSeconds`), `details` adds what helps fix it.
 * Thrown before anything is written (or from inside the transaction, which then rolls back).
 */
export class AlertRequestError extends Error {
  constructor(
    message: string,
    readonly argument: string,
    readonly code: AlertErrorCode = 'BAD_USER_INPUT',
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AlertRequestError';
  }
}
