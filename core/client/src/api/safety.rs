//! Blocks, reports and the admin API (`docs/protocol.md` §12).

use super::{enc, ApiClient, Result};
use ruang_proto::{
    AdminMember, AuditPage, BanOutcome, BanRequest, ReportKind, ReportPage, ReportReceipt,
    ReportRequest, ReportStatus, ResolveReportRequest, RevokeInvitesOutcome, RevokeInvitesRequest,
    UserPage,
};

impl ApiClient {
    pub async fn block(&self, handle: &str) -> Result<()> {
        let url = self.url(&format!("v1/users/{}/block", enc(handle)));
        self.send_empty(self.http.post(url)).await
    }

    pub async fn unblock(&self, handle: &str) -> Result<()> {
        let url = self.url(&format!("v1/users/{}/block", enc(handle)));
        self.send_empty(self.http.delete(url)).await
    }

    /// One page of the people you blocked, newest first.
    pub async fn blocks(&self, cursor: Option<&str>, limit: Option<u32>) -> Result<UserPage> {
        let mut url = self.url("v1/me/blocks");
        {
            let mut q = url.query_pairs_mut();
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        self.send(self.http.get(url)).await
    }

    pub async fn report(&self, req: &ReportRequest) -> Result<ReportReceipt> {
        self.send(self.post("v1/reports", req)).await
    }

    // ----- admins -----

    pub async fn admin_reports(
        &self,
        status: ReportStatus,
        kind: Option<ReportKind>,
        cursor: Option<&str>,
    ) -> Result<ReportPage> {
        let mut url = self.url("v1/admin/reports");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("status", status.as_str());
            if let Some(k) = kind {
                q.append_pair("kind", k.as_str());
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", c);
            }
        }
        self.send(self.http.get(url)).await
    }

    pub async fn admin_resolve(
        &self,
        id: &str,
        req: &ResolveReportRequest,
    ) -> Result<ruang_proto::Report> {
        self.send(self.post(&format!("v1/admin/reports/{}/resolve", enc(id)), req))
            .await
    }

    pub async fn admin_member(&self, handle: &str) -> Result<AdminMember> {
        self.send(
            self.http
                .get(self.url(&format!("v1/admin/members/{}", enc(handle)))),
        )
        .await
    }

    pub async fn admin_ban(&self, handle: &str, reason: &str) -> Result<BanOutcome> {
        let req = BanRequest {
            reason: reason.to_owned(),
        };
        self.send(self.post(&format!("v1/admin/members/{}/ban", enc(handle)), &req))
            .await
    }

    pub async fn admin_unban(&self, handle: &str) -> Result<()> {
        let url = self.url(&format!("v1/admin/members/{}/unban", enc(handle)));
        self.send_empty(self.http.post(url)).await
    }

    pub async fn admin_revoke_invites(
        &self,
        handle: &str,
        subtree: bool,
    ) -> Result<RevokeInvitesOutcome> {
        let req = RevokeInvitesRequest { subtree };
        let path = format!("v1/admin/members/{}/revoke-invites", enc(handle));
        self.send(self.post(&path, &req)).await
    }

    pub async fn admin_audit(&self, cursor: Option<&str>) -> Result<AuditPage> {
        let mut url = self.url("v1/admin/audit");
        if let Some(c) = cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        self.send(self.http.get(url)).await
    }
}
