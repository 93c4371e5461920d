import type { ApiRole } from '../db/schema';

export type { ApiRole };
export { API_ROLES } from '../db/schema';

const RANK: Record<ApiRole, number> = { viewer: 1, operator: 2, admin: 3 };

/** Roles nest: an operator may do what a viewer may, an admin what an operator may. */
export function roleAllows(role: ApiRole, needed: ApiRole): boolean {
  return RANK[role] >= RANK[needed];
}

/** Who is asking: the API token of a request or websocket connection. */
export interface Principal {
  tokenId: number;
  name: string;
  role: ApiRole;
  /** `fgt_` and the token's next 4 characters: safe to log and show. */
  prefix: string;
}

/** How the audit trail (box_config_changes.requested_by, revoked_by) names a principal. */
export function actorName(principal: Principal): string {
  return `${principal.name} (token #${principal.tokenId})`;
}

/** Whether `principal` may read camera URLs and what holds them unmasked: operators and admins. */
export function readsCredentials(principal: Principal | undefined): boolean {
  return principal !== undefined && roleAllows(principal.role, 'operator');
}
